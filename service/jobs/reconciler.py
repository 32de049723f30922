"""The reconciler: PostgreSQL says what must run, so it re-sends what Redis lost or a dead worker dropped.

It runs as an asyncio task in every API process (service.main's lifespan), so `ganserve up` and
docker-compose need no extra process. Several replicas are safe: each re-send is fenced by a conditional
UPDATE of the job's updated_at (one replica wins per job per period), and a duplicate message is harmless
anyway, because a worker must claim the job (worker/leases.py) and only one claim can succeed.

Each pass:
1. fails running jobs past settings.job_time_limit_s (this also fences out their worker's writes);
2. re-sends running jobs whose heartbeat is older than settings.lease_timeout_s (the worker died: the
   next claim resumes from the checkpoint, or fails the job after settings.max_attempts);
3. re-sends queued jobs older than settings.reconcile_queued_after_s whose message is neither in the queue
   nor delivered within that time (a flushed or restarted-empty Redis, a send that failed, a worker that
   died holding it); one replica per pass reads the broker, a page at a time;
4. deletes the checkpoints of jobs that failed or were cancelled: nothing will resume them, and a paper-mnist
   checkpoint is ~40 MB. (A job that succeeds deletes its own, in the transaction that registers it; the
   ways to fail are many: the worker, this reconciler, a claim after max_attempts.)
Then the steps the app adds (service.main): settling seed sweeps whose members all ended with no worker or
request left to settle them (service/versions/sweep_settle.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, func, select, update

from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import Blob, Job
from service.jobs.queue import claim_pass, enqueue, missing_from_broker
from service.jobs.status import JobStatus, finish
from service.settings import get_settings
from service.telemetry import logs
from service.telemetry.metrics import RECONCILED

log = logging.getLogger(__name__)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def fail_overdue() -> int:
    limit = get_settings().job_time_limit_s
    with session_scope() as session:
        overdue = (Job.status == JobStatus.RUNNING) & (Job.started_at < func.now() - _seconds(limit))
        error = f"time limit exceeded: the job ran longer than {limit:g} s (job_time_limit_s)"
        result = session.execute(finish(overdue, JobStatus.FAILED, error).returning(Job.id)).all()
    for (job_id,) in result:
        with logs.job_context(job_id):
            log.warning("failed a job over its time limit")
    return len(result)


def redispatch_stale() -> int:
    """Running jobs whose worker stopped heartbeating. The UPDATE, the sends and the commit share one
    transaction: a send that fails rolls the fence back, so the next pass tries again."""
    timeout = _seconds(get_settings().lease_timeout_s)
    return _redispatch("stale", "re-dispatching a job whose worker stopped heartbeating",
                       Job.status == JobStatus.RUNNING, Job.heartbeat_at < func.now() - timeout,
                       Job.updated_at < func.now() - timeout)


def redispatch_lost() -> int:
    """Queued jobs that no message in the broker names. One replica per interval reads the broker."""
    settings = get_settings()
    grace = _seconds(settings.reconcile_queued_after_s)
    old_enough = (Job.status == JobStatus.QUEUED) & (Job.updated_at < func.now() - grace)
    with session_scope() as session:
        candidates = [job_id for (job_id,) in session.execute(select(Job.id).where(old_enough)).all()]
    if not candidates or not claim_pass("lost", settings.reconcile_interval_s * 0.9):
        return 0
    delivered_after = time.time() - settings.reconcile_queued_after_s
    missing = [uuid.UUID(j) for j in missing_from_broker([str(j) for j in candidates], delivered_after)]
    if not missing:
        return 0
    return _redispatch("lost", "re-dispatching a queued job the broker lost", old_enough, Job.id.in_(missing))


def _redispatch(reason: str, message: str, *where: ColumnElement[bool]) -> int:
    """Send the jobs matching `where` to the broker again, touching updated_at in the same transaction (the
    fence against a second pass); returns how many, counted under `reason`."""
    with session_scope() as session:
        rows = session.execute(
            update(Job).where(*where).values(updated_at=func.now()).returning(Job.id, Job.kind)
            .execution_options(synchronize_session=False)).all()
        for job_id, kind in rows:
            with logs.job_context(job_id):
                log.warning(message)
            enqueue(job_id, kind)
    _count(reason, len(rows))
    return len(rows)


def drop_ended_checkpoints() -> int:
    """Delete the checkpoint blobs of failed and cancelled jobs; returns how many this call deleted. Only
    checkpoint keys are listed (one or two per unfinished job; the key scan reads no blob data), never the
    ended jobs, whose number only grows."""
    with session_scope() as session:
        keys = session.scalars(select(Blob.key).where(Blob.key.startswith(blobs.CHECKPOINTS))).all()
        owners = {key: blobs.checkpoint_job(key) for key in keys}
        ids = {job_id for job_id in owners.values() if job_id is not None}
        if not ids:
            return 0
        never_resumed = Job.status.in_((JobStatus.FAILED, JobStatus.CANCELLED))
        ended = set(session.scalars(select(Job.id).where(Job.id.in_(ids), never_resumed)))
        doomed = [key for key, job_id in owners.items() if job_id in ended]
        if not doomed:
            return 0
        deleted = int(session.execute(delete(Blob).where(Blob.key.in_(doomed))).rowcount)  # type: ignore[attr-defined]
    if deleted:
        log.info("deleted %d checkpoint(s) of failed or cancelled jobs", deleted)
    return deleted


def _count(reason: str, n: int) -> None:
    if n:
        RECONCILED.labels(reason).inc(n)


STEPS = {"overdue": fail_overdue, "stale": redispatch_stale, "lost": redispatch_lost,
         "checkpoints_dropped": drop_ended_checkpoints}


Step = Callable[[], int]


def reconcile_once(extra: dict[str, Step] | None = None) -> dict[str, int]:
    """Every step (STEPS, then `extra`: steps of the layers above, which this package does not import), each on
    its own: a broker outage (the re-sends) does not hold up the database's steps. A step that failed is logged
    and left out of the result; the next pass tries it again."""
    done: dict[str, int] = {}
    for name, step in {**STEPS, **(extra or {})}.items():
        try:
            done[name] = step()
        except Exception as exc:  # noqa: BLE001 - an outage only skips the step
            log.warning("reconciler step %s skipped: %s: %s", name, type(exc).__name__, str(exc)[:200])
    return done


async def run_forever(stop: asyncio.Event, extra: dict[str, Step] | None = None) -> None:
    """The periodic loop; an outage (database or broker down) only skips a pass."""
    interval = get_settings().reconcile_interval_s
    while not stop.is_set():
        try:
            await asyncio.to_thread(reconcile_once, extra)
        except Exception as exc:  # noqa: BLE001 - the next pass retries
            log.warning("reconciler pass skipped: %s: %s", type(exc).__name__, str(exc)[:200])
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
