"""Sample-quality scores on the API side: queueing the `scores` job, stored results, the GET /scores body.

The numbers are computed by service/evaluation/quality.py on a worker (worker/scores_job.py). Stored rows:
table `evaluations`, kind "scores": one per model version (reference ""), and per dataset a real-train row
(10,000 training images in the samples' place) for each classifier version. Torch-free: the API imports it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import datasets
from service.db.engine import session_scope
from service.db.tables import Evaluation, Job, ModelVersion
from service.errors import InvalidParameter
from service.evaluation import classifiers, parzen, stored_results
from service.evaluation.quality import protocol_config
from service.jobs import store as jobs
from service.settings import get_settings

log = logging.getLogger(__name__)

KIND = "scores"
NUMBERS = ("fd", "kid", "kid_std", "precision", "recall", "classes_covered", "class_kl", "modes_covered")


def problem(row: ModelVersion) -> str | None:
    """Why the version cannot be scored, or None."""
    if row.dataset not in datasets.dataset_names():
        return f"dataset {row.dataset!r} is not registered, so there is no test split to compare with"
    return None


def check(row: ModelVersion, field: str) -> None:
    why = problem(row)
    if why:
        raise InvalidParameter(field, f"{row.name} v{row.version}: {why}")


def reference_key(row_or_result: dict[str, Any]) -> str:
    classifier = row_or_result.get("classifier")
    return f"{parzen.REAL_TRAIN}:c{classifier['version']}" if classifier else parzen.REAL_TRAIN


def latest_job(row: ModelVersion) -> Job | None:
    return stored_results.latest_job(KIND, row)


def _new_job(row: ModelVersion, idempotency_key: str | None) -> tuple[Job, bool]:
    if classifiers.needed(row.dataset) and classifiers.latest(row.dataset) is None:
        classifiers.ensure_queued(row.dataset)     # first: the scores job waits for it
    return jobs.create(jobs.NewJob(kind=KIND, model_name=row.name, dataset=row.dataset, config=protocol_config(),
                                   target_version=row.version, idempotency_key=idempotency_key))


def submit(model: str, version: int | None, idempotency_key: str | None) -> tuple[Job, bool]:
    """POST /scores: a new computation (a re-run replaces the stored scores)."""
    row = stored_results.find_version(model, version)
    check(row, "version" if version is not None else "model")
    return _new_job(row, idempotency_key)


def ensure_queued(row: ModelVersion) -> Job:
    """The queued/running scores job of `row`, or a newly queued one (one automatic job per version)."""
    return stored_results.ensure_queued(KIND, row, _new_job)


def queue_for_version(name: str, version: int) -> Job | None:
    """After a training job registered `version`: queue its scores."""
    return stored_results.queue_after_training("sample-quality scores", get_settings().scores_after_training, name,
                                       version, problem, ensure_queued)


def queue_all_for_version(name: str, version: int) -> None:
    """After `version` was registered: queue its Parzen score and its sample-quality scores (commit, then
    enqueue). Never raises: the model is registered whatever its scores do."""
    parzen.queue_for_version(name, version)
    queue_for_version(name, version)


def saved(row: ModelVersion) -> tuple[dict[str, Any], Any, Any] | None:
    with session_scope() as session:
        found = stored_results.evaluation(session, KIND, row.id, row.dataset, "")
        return None if found is None else (dict(found.result), found.job_id, found.created_at)


def summaries(version_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The headline numbers of each scored version, for GET /models."""
    with session_scope() as session:
        rows = session.scalars(select(Evaluation).where(Evaluation.kind == KIND, Evaluation.reference == "",
                                                        Evaluation.model_version_id.in_(version_ids)))
        return {int(r.model_version_id or 0): {k: r.result[k] for k in NUMBERS if k in r.result} for r in rows}


def compose(row: ModelVersion, result: dict[str, Any], job_id: Any, at: Any) -> dict[str, Any]:
    """The GET /scores body (evaluation_schemas.ScoresOut)."""
    with session_scope() as session:
        ref = stored_results.evaluation(session, KIND, None, row.dataset, reference_key(result))
        reference = dict(ref.result) if ref else None
    keep = (*NUMBERS, "class_histogram", "test_histogram", "n_classes", "modes", "n_samples", "n_test", "space",
            "classifier")
    return {"model": row.name, "version": row.version, "dataset": row.dataset,
            **{k: result[k] for k in keep if k in result},
            "reference": {k: reference[k] for k in keep if k in reference} if reference else None,
            "parzen": parzen.result_for(row), "protocol": result.get("config") or protocol_config(),
            "job_id": str(job_id) if job_id else None, "evaluated_at": at.isoformat() if at else None}


def store(session: Session, row: ModelVersion, job_id: Any, result: dict[str, Any],
          reference: dict[str, Any] | None) -> None:
    """Upsert the version's scores (and insert the reference row unless there is one) in the caller's
    transaction; an advisory lock serializes reference rows, whose NULL version never collides in UNIQUE."""
    stmt = insert(Evaluation).values(kind=KIND, model_version_id=row.id, dataset=row.dataset, reference="",
                                     job_id=job_id, result=result)
    session.execute(stmt.on_conflict_do_update(index_elements=["kind", "model_version_id", "dataset", "reference"],
                                               set_={"job_id": job_id, "result": result,
                                                     "created_at": text("now()")}))
    if reference is None:
        return
    key = reference_key(reference)
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"scores-reference:{row.dataset}"})
    if stored_results.evaluation(session, KIND, None, row.dataset, key) is None:
        session.add(Evaluation(kind=KIND, model_version_id=None, dataset=row.dataset, reference=key,
                               job_id=job_id, result=reference))


def has_reference(dataset: str, key: str) -> bool:
    with session_scope() as session:
        return stored_results.evaluation(session, KIND, None, dataset, key) is not None
