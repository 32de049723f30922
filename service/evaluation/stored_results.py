"""What the evaluation kinds (Parzen, the sample-quality scores) share: finding the version a score is of, the
lookup of a stored result, and the step that queues a kind's job after training."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.engine import session_scope
from service.db.tables import Evaluation, Job, ModelVersion
from service.jobs.status import FINISHED
from service.versions import refs
from service.versions.refs import VersionRef

log = logging.getLogger(__name__)


def find_version(model: str, version: VersionRef) -> ModelVersion:
    """The version row (a number, an alias, or the latest when None); NotFound (404) lists what exists."""
    with session_scope() as session:
        return refs.find(session, model, version)


def evaluation(session: Session, kind: str, version_id: int | None, dataset: str,
               reference: str) -> Evaluation | None:
    """The stored result of `kind` for a version (or, version_id None, a reference row such as real data's)."""
    query = select(Evaluation).where(Evaluation.kind == kind, Evaluation.dataset == dataset,
                                     Evaluation.reference == reference)
    query = query.where(Evaluation.model_version_id.is_(None) if version_id is None
                        else Evaluation.model_version_id == version_id)
    return session.scalar(query.order_by(Evaluation.id).limit(1))


def latest_job(kind: str, row: ModelVersion) -> Job | None:
    """The newest `kind` job of this version, whatever its status."""
    with session_scope() as session:
        return session.scalar(select(Job).where(Job.kind == kind, Job.model_name == row.name,
                                                Job.target_version == row.version)
                              .order_by(Job.created_at.desc()).limit(1))


NewJob = Callable[[ModelVersion, str | None], tuple[Job, bool]]


def ensure_queued(kind: str, row: ModelVersion, new_job: NewJob) -> Job:
    """The queued/running `kind` job of `row`, or a newly queued one: one automatic job per version, which the
    post-training hook and any number of concurrent requests share (idempotent under concurrency).
    new_job(row, idempotency_key) creates one (or returns the job already holding that key)."""
    job = latest_job(kind, row)
    if job is not None and job.status not in FINISHED:
        return job
    job, created = new_job(row, f"{kind}-auto:{row.name}:v{row.version}:{row.id}")
    if not created and job.status in FINISHED:
        job, _ = new_job(row, None)  # the automatic run ended without a stored result: run it again
    return job


def queue_after_training(what: str, enabled: bool, name: str, version: int,
                         problem: Callable[[ModelVersion], str | None],
                         ensure_queued: Callable[[ModelVersion], Job]) -> Job | None:
    """Right after a training job registered `version`: queue its `what` job unless disabled or `problem`
    says why it cannot be scored. Never raises: the model is trained and registered whatever happens here."""
    if not enabled:
        return None
    try:
        row = find_version(name, version)
        why = problem(row)
        if why:
            log.info("no %s for %s v%d: %s", what, name, version, why)
            return None
        job = ensure_queued(row)
        log.info("queued the %s of %s v%d: job %s", what, name, version, job.id)
        return job
    except Exception:
        log.warning("could not queue the %s of %s v%d", what, name, version, exc_info=True)
        return None


__all__ = ["ensure_queued", "evaluation", "find_version", "latest_job", "queue_after_training"]
