"""A sweep member's end, and the sweep's settlement (service/jobs/sweeps.py has the API side).

A member does not register a version at its end: it stores its artifact and what registering needs (with its
validation score, computed here when it did not score while training) in the sweep's row, and succeeds. When
every member has ended, `settle` (run by whichever member's worker ends last) registers them in one
transaction: the others first (unless keep is "best-only"), then the best by valid_ll, so it is the latest.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import numpy as np
from sqlalchemy import func, select

from models import datasets
from models.config import TrainConfig
from service.db import blobs
from service.db.blobs import best_key, checkpoint_key
from service.db.engine import session_scope
from service.db.tables import Job, ModelVersion, Sweep
from service.evaluation import parzen, scores
from service.jobs.status import FINISHED, JobStatus
from service.versions import refs
from worker.export import Exported
from worker.leases import Lease
from worker.training.hooks import TrainOutcome
from worker.training.validation import ValidationScorer

log = logging.getLogger(__name__)


def version_fields(config: TrainConfig, splits: datasets.Splits, exported: Exported, key: str,
                   metrics: dict[str, Any]) -> dict[str, Any]:
    """A ModelVersion's columns, less name, version and job_id."""
    return {"artifact_key": key, "artifact_sha256": exported.sha256, "artifact_size": len(exported.onnx),
            "latent_dim": config.latent_dim,
            "noise": {"kind": "uniform", "low": -config.noise_scale, "high": config.noise_scale},
            "image_shape": list(splits.image_shape), "dataset": config.dataset, "dataset_sha256": splits.sha256,
            "config": config.to_dict(), "metrics": metrics}


def finish(lease: Lease, sweep_id: uuid.UUID, name: str, config: TrainConfig, splits: datasets.Splits,
           outcome: TrainOutcome, exported: Exported, metrics: dict[str, Any]) -> None:
    """Store the member's artifact and registration fields in the sweep, and mark the job succeeded."""
    if "valid_ll" not in metrics:
        assert splits.valid is not None, "POST /jobs refuses a sweep on data without a validation split"
        metrics = {**metrics, **ValidationScorer(config, np.asarray(splits.valid))(outcome.generator)}
    key = f"models/{name}/{exported.sha256}.onnx"
    fields = version_fields(config, splits, exported, key, {**metrics, "sweep_seed": config.seed})
    with session_scope() as session:
        sweep = session.scalar(select(Sweep).where(Sweep.id == sweep_id).with_for_update())
        assert sweep is not None
        blobs.put(session, key, exported.onnx, "application/onnx")
        sweep.results = {**sweep.results, str(lease.job_id): {"valid_ll": metrics["valid_ll"],
                                                              "valid_ll_se": metrics.get("valid_ll_se"),
                                                              "fields": fields}}
        lease.end(session, JobStatus.SUCCEEDED, progress=1.0, iteration=outcome.iterations)
        blobs.delete(session, checkpoint_key(lease.job_id))
        blobs.delete(session, best_key(lease.job_id))


def _order(sweep: Sweep) -> list[str]:
    """Member job ids to register, best last; the best alone with keep "best-only"."""
    ranked = sorted(sweep.results, key=lambda j: sweep.results[j]["valid_ll"])
    return ranked[-1:] if sweep.keep == "best-only" else ranked


def settle(sweep_id: uuid.UUID) -> list[tuple[str, int]]:
    """Register the sweep's versions once every member has ended (idempotent: the first caller does it).
    Returns the (name, version) registered, best last."""
    registered: list[tuple[str, int]] = []
    with session_scope() as session:
        sweep = session.scalar(select(Sweep).where(Sweep.id == sweep_id).with_for_update())
        if sweep is None or sweep.settled_at is not None:
            return []
        statuses = session.scalars(select(Job.status).where(Job.sweep_id == sweep_id)).all()
        if any(s not in FINISHED for s in statuses):
            return []
        refs.lock_name(session, sweep.model_name)
        first = refs.next_number(session, sweep.model_name)   # past retired numbers too: never reused
        order = _order(sweep)
        results = {k: dict(v) for k, v in sweep.results.items()}
        for number, job_id in enumerate(order, start=first):
            fields = results[job_id]["fields"]
            fields["metrics"] = {**fields["metrics"], "sweep_id": str(sweep_id), "sweep_best": job_id == order[-1]}
            session.add(ModelVersion(name=sweep.model_name, version=number, job_id=uuid.UUID(job_id), **fields))
            results[job_id]["version"] = number
            registered.append((sweep.model_name, number))
        dropped = {results[j]["fields"]["artifact_key"] for j in results if j not in order}
        kept = {results[j]["fields"]["artifact_key"] for j in order}
        for key in dropped - kept:
            blobs.delete(session, key)
        sweep.results = results
        sweep.best_job_id = uuid.UUID(order[-1]) if order else None
        sweep.settled_at = func.now()
    for name, number in registered:
        parzen.queue_for_version(name, number)
        scores.queue_for_version(name, number)
    log.info("sweep %s settled: registered %s", sweep_id, registered)
    return registered
