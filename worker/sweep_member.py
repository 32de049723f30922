"""A sweep member's end (service/jobs/sweeps.py has the API side, service/versions/sweep_settle.py the
settlement).

A member does not register a version at its end: it stores its artifact and what registering needs (with its
validation score, computed here when it did not score while training) in the sweep's row, and succeeds. When
every member has ended, the sweep is settled: its versions registered, the best last and as alias `best`.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from sqlalchemy import select

from models import datasets
from models.config import TrainConfig
from service.db import blobs
from service.db.blobs import best_key, checkpoint_key
from service.db.engine import session_scope
from service.db.tables import Sweep
from service.jobs.status import JobStatus
from worker.export import Exported
from worker.leases import Lease
from worker.training.hooks import TrainOutcome
from worker.training.validation import ValidationScorer


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
