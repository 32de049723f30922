"""Each dataset's classifier on the API side: the stored rows, whether a dataset can have one, queueing its job.

The classifier (models/nets/classifier.py) is trained by a `classifier` job (worker/classifier_job.py) on the
training split and its labels, exported to ONNX and stored as a versioned artifact with its test accuracy; the
scores (service/evaluation/scores.py) read its penultimate layer and its softmax: builtin datasets with labels
and uploads with one folder per class. Toys need none (their scores are in data space); a dataset without labels
gets none (its scores use random features, quality.RandomFeatures).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import datasets
from service.db.engine import session_scope
from service.db.tables import Classifier, Job
from service.jobs import store as jobs
from service.jobs.status import FINISHED
from service.settings import get_settings

KIND = "classifier"


def protocol_config() -> dict[str, Any]:
    settings = get_settings()
    return {"epochs": settings.classifier_epochs, "held_out": settings.classifier_held_out,
            "train_examples": settings.classifier_train_examples, "seed": 0}


def labels_problem(dataset: str) -> str | None:
    """Why `dataset` cannot have a classifier (no labels), or None. Toys never need one."""
    if datasets.is_toy(dataset):
        return None
    if dataset not in datasets.dataset_names():
        return f"dataset {dataset!r} is not registered"
    if not datasets.label_names_of(dataset):
        return (f"dataset {dataset!r} has no class labels, so no classifier can be trained for its features "
                "(its sample-quality scores use random features instead)")
    return None


def needed(dataset: str) -> bool:
    """Whether the scores of `dataset` read a classifier: images with labels (toys and unlabelled images do not)."""
    return not datasets.is_toy(dataset) and labels_problem(dataset) is None


def latest(dataset: str) -> Classifier | None:
    with session_scope() as session:
        return session.scalar(select(Classifier).where(Classifier.dataset == dataset)
                              .order_by(Classifier.version.desc()).limit(1))


def latest_job(dataset: str) -> Job | None:
    with session_scope() as session:
        return session.scalar(select(Job).where(Job.kind == KIND, Job.dataset == dataset)
                              .order_by(Job.created_at.desc()).limit(1))


def ensure_queued(dataset: str) -> Job:
    """The queued/running classifier job of `dataset`, or a newly queued one (idempotent under concurrency)."""
    job = latest_job(dataset)
    if job is not None and job.status not in FINISHED:
        return job
    job, created = jobs.create(jobs.NewJob(kind=KIND, model_name=f"classifier-{dataset}"[:64], dataset=dataset,
                                           config=protocol_config(), idempotency_key=f"classifier-auto:{dataset}"))
    if not created and job.status in FINISHED:
        job, _ = jobs.create(jobs.NewJob(kind=KIND, model_name=f"classifier-{dataset}"[:64], dataset=dataset,
                                         config=protocol_config()))
    return job


def next_version(session: Session, dataset: str) -> int:
    return int(session.scalar(select(func.coalesce(func.max(Classifier.version), 0))
                              .where(Classifier.dataset == dataset))) + 1


def describe(row: Classifier) -> dict[str, Any]:
    return {"dataset": row.dataset, "version": row.version, "test_accuracy": row.test_accuracy,
            "features": row.features, "n_classes": row.n_classes, "artifact_sha256": row.artifact_sha256,
            "job_id": str(row.job_id), **{k: row.details[k] for k in ("best_epoch", "epochs") if k in row.details}}


__all__ = ["KIND", "describe", "ensure_queued", "labels_problem", "latest", "latest_job", "needed", "next_version",
           "protocol_config"]
