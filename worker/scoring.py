"""An evaluation job: the Parzen-window log-likelihood of one model version (Table 1 of the paper).

claim → service.evaluation.scoring computes the score (and, the first time on a dataset, its "real-train"
reference row) → one fenced transaction stores it and marks the job succeeded.

Liveness: the lease's heartbeat thread beats every settings.heartbeat_s throughout, and each phase records
its progress with a forced beat. On MNIST one evaluation is ~1.5-3 s on two cores, so the thread is more than
enough; it also covers datasets where the GEMMs take minutes.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from models import datasets
from service.db.engine import session_scope
from service.db.tables import Job, ModelVersion
from service.evaluation import parzen
from service.evaluation.scoring import EvaluationError, evaluate_version
from service.jobs.status import JobStatus
from worker.leases import Lease, run_leased

log = logging.getLogger(__name__)


class Stopped(RuntimeError):
    """Cancel asked, lease lost or time limit passed between two phases."""


def run(lease: Lease) -> None:
    """Run a claimed parzen job to succeeded / failed / cancelled (worker.leases.run_leased). After a database
    outage the next attempt simply computes again: nothing partial was stored."""
    run_leased(lease, _run, stopped=Stopped, failures=(EvaluationError, datasets.DatasetError))


def _run(lease: Lease) -> None:
    def progress(fraction: float) -> None:
        if lease.heartbeat(progress=fraction, force=True):
            raise Stopped()

    with session_scope() as session:
        job = session.get(Job, lease.job_id)
        assert job is not None
        version = session.scalar(select(ModelVersion).where(ModelVersion.name == job.model_name,
                                                            ModelVersion.version == job.target_version))
        config = dict(job.config)
    if version is None:
        raise EvaluationError(f"model {job.model_name!r} has no version {job.target_version}")
    with_reference = not parzen.has_reference(version.dataset)
    stored, reference = evaluate_version(version, config, with_reference, progress)
    progress(0.95)
    with session_scope() as session:
        # One transaction: the score exists if and only if the job succeeded, and only while we hold it.
        lease.end(session, JobStatus.SUCCEEDED, progress=1.0)
        parzen.store(session, version.id, version.dataset, lease.job_id, stored)
        if reference is not None:
            parzen.store_reference(session, version.dataset, lease.job_id, reference)
    log.info("job %s: %s v%d scores %.1f ± %.1f (sigma %.3f)", lease.job_id, version.name, version.version,
             stored["ll"], stored["se"], stored["sigma"])
