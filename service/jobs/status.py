"""A job's status: the one Enum, the transitions allowed between its members, and the only code that writes it.

Every status write is built here, as an UPDATE whose WHERE clause also requires `status IN (the statuses
allowed to become the target)`: a transition missing from TRANSITIONS matches no row, whatever the caller
adds to the WHERE clause. The callers narrow it (the lease's fence, the job's id) and execute it, often with
`.returning(...)`. tests/service/jobs/test_status.py fails if another module writes `Job.status`.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Update, func, update

from service.db.tables import Job


class JobStatus(StrEnum):
    """str-valued: the database column and the API's JSON hold these very strings."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED: tuple[JobStatus, ...] = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

# Who makes each move:
#   queued  -> running    a worker claims the job (worker/leases.py claim)
#   queued  -> cancelled  a cancel (service/jobs/store.py), or a claim of a job whose cancel was asked
#   queued  -> failed     a claim that finds the job's attempts used up (settings.max_attempts)
#   running -> running    a claim takes over a job whose worker stopped heartbeating: a new lease token
#   running -> succeeded  the job's body, in the transaction that stores its result
#   running -> cancelled  the worker, once it sees cancel_requested (a cancel only sets that flag), or a claim
#                         of a dead worker's job whose cancel was asked
#   running -> failed     the worker (an error, its time limit), the reconciler (the time limit passed; this
#                         also fences out a worker still on it), or a claim after max_attempts dead workers
# A finished job never changes again. Nothing moves a job back to queued: the reconciler re-sends a stale
# running job's message as it is, and the claim above takes it over.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.CANCELLED, JobStatus.FAILED}),
    **{finished: frozenset() for finished in FINISHED},
}


def sources(target: JobStatus) -> tuple[JobStatus, ...]:
    """The statuses a job may have for a write to move it to `target`."""
    return tuple(status for status in JobStatus if target in TRANSITIONS[status])


def _move(target: JobStatus, where: ColumnElement[bool], **values: Any) -> Update:
    return (update(Job).where(where, Job.status.in_(sources(target))).values(status=target, **values)
            .execution_options(synchronize_session=False))


def new_job(*, kind: str, model_name: str, dataset: str, config: dict[str, Any], target_version: int | None,
            idempotency_key: str | None, sweep_id: uuid.UUID | None = None) -> Job:
    """The row of a job nothing has touched yet: queued."""
    return Job(id=uuid.uuid4(), kind=kind, model_name=model_name, dataset=dataset, config=config,
               target_version=target_version, sweep_id=sweep_id, status=JobStatus.QUEUED, progress=0.0, iteration=0, attempts=0,
               cancel_requested=False, idempotency_key=idempotency_key, restarts=[])


def cancel_queued(job_id: uuid.UUID) -> Update:
    """A queued job is cancelled at once; the flag also stops a claim that raced with the cancel."""
    return _move(JobStatus.CANCELLED, (Job.id == job_id) & (Job.status == JobStatus.QUEUED), cancel_requested=True)


def claim(where: ColumnElement[bool], token: uuid.UUID) -> Update:
    """The job runs under a new lease: one attempt more, its heartbeat now, started_at kept from its first start
    (the time limit counts from there), no error left from an earlier attempt."""
    return _move(JobStatus.RUNNING, where, lease_token=token, attempts=Job.attempts + 1, heartbeat_at=func.now(),
                 started_at=func.coalesce(Job.started_at, func.now()), error=None)


def finish(where: ColumnElement[bool], target: JobStatus, error: str | None = None, **values: Any) -> Update:
    """The job ends as `target` (one of FINISHED) and releases its lease. `values`: other columns to write
    in the same statement (a succeeded job's progress and iteration)."""
    if target not in FINISHED:
        raise ValueError(f"{target!r} is not a finished status")
    return _move(target, where, error=error, finished_at=func.now(), lease_token=None, **values)
