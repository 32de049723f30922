"""Job bookkeeping on the API side: create (commit, then enqueue), read, cancel. No web code here."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from models import budget, datasets
from models.config import ConfigError, resolve
from service.db.engine import session_scope
from service.db.notify import CANCEL, notify
from service.db.tables import Job, JobMetric, JobSnapshot
from service.errors import BrokerUnavailable, IdempotencyConflict, NotFound
from service.jobs.queue import enqueue
from service.jobs.status import FINISHED, JobStatus, cancel_queued, new_job
from service.settings import get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewJob:
    kind: str
    model_name: str
    dataset: str
    config: dict[str, Any]
    target_version: int | None = None
    idempotency_key: str | None = None
    sweep_id: uuid.UUID | None = None


def _same_request(job: Job, new: NewJob) -> Job:
    # Through JSON, as the stored row went (tuples come back as lists).
    if (job.kind, job.model_name, job.dataset, job.config, job.target_version) != \
            (new.kind, new.model_name, new.dataset, json.loads(json.dumps(new.config)), new.target_version):
        raise IdempotencyConflict(f"Idempotency-Key {new.idempotency_key!r} was already used for a different "
                                  f"request (job {job.id}); use a new key for a new job")
    return job


def create(new: NewJob) -> tuple[Job, bool]:
    """Insert the row, commit, then send the task. Returns (job, created); an Idempotency-Key repeat
    returns the job it created the first time (409 if the repeat asks for something else).

    Broker down: the row is deleted again and BrokerUnavailable raised (→ 503 + Retry-After), so a 503
    means "nothing was queued" and the client may simply retry. Should the delete fail too (database
    gone as well), the row stays `queued` and the reconciler sends it later: never a row without a message
    for long."""
    if new.idempotency_key:
        existing = find_by_idempotency_key(new.idempotency_key)
        if existing is not None:
            return _same_request(existing, new), False
    job = new_job(kind=new.kind, model_name=new.model_name, dataset=new.dataset, config=new.config,
                  target_version=new.target_version, idempotency_key=new.idempotency_key, sweep_id=new.sweep_id)
    try:
        with session_scope() as session:
            session.add(job)
    except IntegrityError:
        # Two requests with the same key raced; the other one's job is the answer.
        existing = find_by_idempotency_key(new.idempotency_key or "")
        if existing is None:
            raise
        return _same_request(existing, new), False
    try:
        enqueue(job.id, job.kind)
    except Exception as exc:
        log.warning("job %s: broker unreachable (%s); taking the job back", job.id, type(exc).__name__)
        with session_scope() as session:
            # Only a job nobody claimed: if the send did reach a worker after all, the job stands.
            taken_back = session.execute(delete(Job).where(Job.id == job.id, Job.status == JobStatus.QUEUED,
                                                           Job.attempts == 0)).rowcount  # type: ignore[attr-defined]
        if taken_back:
            raise BrokerUnavailable("the job broker is unreachable; nothing was queued") from exc
    return job, True


def submit_train(model: str, preset: str, dataset: str | None, overrides: dict[str, Any],
                 idempotency_key: str | None = None, sweep_id: uuid.UUID | None = None) -> tuple[Job, bool]:
    """Resolve and validate the config (ConfigError names the bad field), then create the job."""
    config = resolve(preset, dataset, **overrides)
    known = datasets.dataset_names()
    if config.dataset not in known:
        field = "dataset" if dataset else "preset"
        raise ConfigError(field, f"unknown dataset {config.dataset!r}; available datasets: {', '.join(known)}")
    if config.score_every and has_no_validation_split(config.dataset):
        raise ConfigError("score_every", f"dataset {config.dataset!r} has no validation split to score G on; "
                                         "use score_every 0")
    budget.check(config, datasets.image_shape_of(config.dataset), get_settings().budget)  # type: ignore[arg-type]
    return create(NewJob("train", model, config.dataset, config.to_dict(), None, idempotency_key, sweep_id))


def has_no_validation_split(dataset: str) -> bool:
    """True only when the dataset is here and lacks one; data not fetched yet is the worker's to check."""
    try:
        return datasets.load(dataset, get_settings().resolved_data_dir).valid is None
    except datasets.DatasetUnavailable:
        return False


def find_by_idempotency_key(key: str) -> Job | None:
    with session_scope() as session:
        return session.scalar(select(Job).where(Job.idempotency_key == key))


def get(job_id: uuid.UUID) -> Job:
    with session_scope() as session:
        job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def list_jobs(status: JobStatus | None = None, model: str | None = None, limit: int = 100) -> list[Job]:
    with session_scope() as session:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if status:
            query = query.where(Job.status == status)
        if model:
            query = query.where(Job.model_name == model)
        return list(session.scalars(query))


def cancel(job_id: uuid.UUID) -> Job:
    """A queued job is cancelled at once; a running one at its worker's next iteration check after the commit
    (the worker LISTENs for the notification, and reads the flag at every heartbeat as well). A finished
    job stays as it is; an unknown one raises NotFound."""
    with session_scope() as session:
        if session.execute(cancel_queued(job_id).returning(Job.id)).first() is None:
            asked = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                                    .values(cancel_requested=True).returning(Job.id)).first()
            if asked is not None:
                notify(session, CANCEL, str(job_id))   # its worker hears it at commit (service/db/notify.py)
    return get(job_id)


def metrics(job_id: uuid.UUID, after: int = -1, limit: int = 10_000) -> list[dict[str, Any]]:
    """A job's metrics rows after iteration `after`, oldest first. The callers have read the job already
    (get() raised 404 if unknown): an unknown id would just give no rows."""
    with session_scope() as session:
        rows = session.scalars(select(JobMetric).where(JobMetric.job_id == job_id,
                                                       JobMetric.iteration > after)
                               .order_by(JobMetric.iteration).limit(limit))
        return [row.values for row in rows]


def snapshots(job_id: uuid.UUID) -> list[JobSnapshot]:
    get(job_id)
    with session_scope() as session:
        return list(session.scalars(select(JobSnapshot).where(JobSnapshot.job_id == job_id)
                                    .order_by(JobSnapshot.iteration)))


def is_finished(status: str) -> bool:
    return status in FINISHED

