"""Figure 1 of a toy-1d training job, stored: the job's snapshot hook computes the curves
(worker/training/figure1.py) and writes them as one JSON blob per snapshot iteration, under the key
service/evaluation/figure1.py reads them back by, in the same fenced-transaction style as the PNG snapshots.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import func

from models import datasets
from models.config import TrainConfig
from models.datasets.toys import true_density
from service.db import blobs
from service.db.engine import session_scope
from service.evaluation import figure1
from service.settings import get_settings
from worker.leases import Lease
from worker.training.figure1 import compute, torch_callables

_data_cache: dict[str, np.ndarray] = {}


def store(job_id: uuid.UUID, fig: dict[str, Any], write_guard: Callable[[Any], None] | None = None) -> None:
    """One blob per iteration; `write_guard(session)` (e.g. the lease's fenced write) runs in the same
    transaction, so a worker that lost its job stores nothing."""
    with session_scope() as session:
        if write_guard is not None:
            write_guard(session)
        blobs.put(session, figure1.blob_key(job_id, fig["iteration"], fig.get("stage")),
                  json.dumps(fig, separators=(",", ":")).encode(), "application/json")


def training_data(dataset: str) -> np.ndarray:
    """The run's training split, loaded once per worker process (the KDE subsamples it anyway)."""
    if dataset not in _data_cache:
        _data_cache[dataset] = np.asarray(datasets.load(dataset, get_settings().resolved_data_dir).train)
    return _data_cache[dataset]


def record(lease: Lease, iteration: int, generator: Any, discriminator: Any, config: TrainConfig,
           stage: str | None = None) -> None:
    """The one call a 1-D run makes per figure: compute Figure 1 and store it, fenced by the job's lease so
    a worker that lost the job writes nothing. stage: the paper's panel this is, if any (figure1.STAGES)."""
    generate, discriminate = torch_callables(generator, discriminator)
    fig = compute(iteration, generate, discriminate, training_data(config.dataset), config.latent_dim,
                  -config.noise_scale, config.noise_scale, seed=iteration, density=true_density(config.dataset))
    store(lease.job_id, {**fig, "stage": stage}, lambda session: lease.write(session, heartbeat_at=func.now()))


# compute: the gallery's tests draw figures with it and store them here, through this one module.
__all__ = ["compute", "record", "store", "training_data"]
