"""A scores job: the sample-quality scores of one model version (service/evaluation/quality.py computes them).

Labelled image datasets need their classifier first: the service queued its job before this one, and this job
waits for it (heartbeating) and fails if it failed. One fenced transaction stores the scores (and, the first time
for a classifier version, the real-train reference row) and marks the job succeeded.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from models import datasets
from service.db.engine import session_scope
from service.db.tables import Classifier, Job, ModelVersion
from service.evaluation import classifiers, quality, scores
from service.evaluation.parzen import REAL_TRAIN
from service.evaluation.scoring import EvaluationError
from service.jobs.status import FINISHED, JobStatus
from worker.leases import Lease, run_leased

log = logging.getLogger(__name__)

CLASSIFIER_POLL_S = 1.0


class Stopped(RuntimeError):
    """Cancel asked, lease lost or time limit passed."""


def run(lease: Lease) -> None:
    run_leased(lease, _run, stopped=Stopped, failures=(EvaluationError, datasets.DatasetError))


def wait_for_classifier(lease: Lease, dataset: str) -> Classifier:
    while True:
        row = classifiers.latest(dataset)
        if row is not None:
            return row
        job = classifiers.latest_job(dataset)
        if job is None or job.status in FINISHED:
            why = f"its classifier job /jobs/{job.id} {job.status}: {job.error}" if job else "no classifier job"
            raise EvaluationError(f"dataset {dataset!r} has no classifier ({why}); ask again with POST /scores")
        if lease.heartbeat(progress=0.0):
            raise Stopped()
        time.sleep(CLASSIFIER_POLL_S)


def _run(lease: Lease) -> None:
    with session_scope() as session:
        job = session.get(Job, lease.job_id)
        assert job is not None
        version = session.scalar(select(ModelVersion).where(ModelVersion.name == job.model_name,
                                                            ModelVersion.version == job.target_version))
    if version is None:
        raise EvaluationError(f"model {job.model_name!r} has no version {job.target_version}")
    classifier = wait_for_classifier(lease, version.dataset) if classifiers.needed(version.dataset) else None
    if lease.heartbeat(progress=0.1, force=True):
        raise Stopped()
    key = f"{REAL_TRAIN}:c{classifier.version}" if classifier else REAL_TRAIN
    t0 = time.perf_counter()
    result, reference = quality.score(version, classifier, not scores.has_reference(version.dataset, key))
    result["seconds"] = time.perf_counter() - t0
    with session_scope() as session:
        lease.end(session, JobStatus.SUCCEEDED, progress=1.0)
        scores.store(session, version, lease.job_id, result, reference)
    log.info("job %s: %s v%d scores fd %.3f in %.1f s", lease.job_id, version.name, version.version, result["fd"],
             result["seconds"])
