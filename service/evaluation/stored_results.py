"""What the evaluation kinds (Parzen, the sample-quality scores) share: finding the version a score is of, the
lookup of a stored result, and the step that queues a kind's job after training."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.engine import session_scope
from service.db.tables import Evaluation, Job, ModelVersion
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


__all__ = ["evaluation", "find_version", "queue_after_training"]
