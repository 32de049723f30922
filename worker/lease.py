"""A worker's ownership of a job: one conditional UPDATE claims it, every later write is fenced by the token.

Celery may deliver a message twice (acks_late, redelivery after a lost worker); the claim makes that harmless:
only a queued job, or a running one whose heartbeat went stale, can be claimed, and only by one worker.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.db import session_scope
from service.settings import get_settings
from service.tables import Job


class LeaseLost(RuntimeError):
    """Another worker took the job over (or it was finished elsewhere): stop writing."""


class Busy(RuntimeError):
    """The job is running on a live worker; try this delivery again later."""


@dataclass
class Lease:
    job_id: uuid.UUID
    token: uuid.UUID
    attempt: int
    _last_beat: float = field(default_factory=time.monotonic)

    def fenced(self) -> object:
        """The WHERE clause every write of this worker carries."""
        return (Job.id == self.job_id) & (Job.lease_token == self.token) & (Job.status == "running")

    def write(self, session: Session, **values: object) -> None:
        """An UPDATE of the job row that only lands while this worker still holds the lease."""
        result = session.execute(update(Job).where(self.fenced()).values(**values)
                                 .execution_options(synchronize_session=False))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(f"job {self.job_id}: lease {self.token} is no longer held")

    def heartbeat(self, *, iteration: int | None = None, progress: float | None = None,
                  force: bool = False) -> bool:
        """Record liveness (rate-limited to settings.heartbeat_s); returns True when a cancel was asked."""
        now = time.monotonic()
        if not force and now - self._last_beat < get_settings().heartbeat_s:
            return False
        self._last_beat = now
        values: dict[str, object] = {"heartbeat_at": func.now()}
        if iteration is not None:
            values["iteration"] = iteration
        if progress is not None:
            values["progress"] = progress
        with session_scope() as session:
            self.write(session, **values)
            return bool(session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))


def stale_after() -> timedelta:
    """A running job whose heartbeat is older than this is presumed dead and may be claimed again."""
    return timedelta(seconds=max(10.0, 8 * get_settings().heartbeat_s))


def claim(job_id: uuid.UUID) -> Lease | None:
    """Take the job, or return None when there is nothing to run (finished, cancelled, unknown).

    Raises Busy when another live worker holds it. After settings.max_attempts claims the job fails
    instead of looping (a poison job)."""
    token = uuid.uuid4()
    max_attempts = get_settings().max_attempts
    with session_scope() as session:
        claimable = (Job.id == job_id) & (Job.attempts < max_attempts) & (
            (Job.status == "queued")
            | ((Job.status == "running") & (Job.heartbeat_at < func.now() - stale_after())))
        row = session.execute(
            update(Job).where(claimable).values(
                status="running", lease_token=token, attempts=Job.attempts + 1, heartbeat_at=func.now(),
                started_at=func.coalesce(Job.started_at, func.now()), error=None)
            .returning(Job.attempts).execution_options(synchronize_session=False)).first()
        if row is not None:
            return Lease(job_id, token, row[0])
        job = session.get(Job, job_id)
        if job is None or job.status not in ("queued", "running"):
            return None
        if job.attempts >= max_attempts and (
                job.status == "queued" or job.heartbeat_at is None
                or session.scalar(select(Job.heartbeat_at < func.now() - stale_after())
                                  .where(Job.id == job_id))):
            job.status = "failed"
            job.error = (job.error or "") + f" (gave up after {job.attempts} attempts)"
            job.finished_at = func.now()
            job.lease_token = None
            return None
        raise Busy(f"job {job_id} is running on another worker")
