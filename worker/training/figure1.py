"""The paper's Figure 1, recorded during a toy-1d run: data density, G's density and D(x) on one x-axis.

At each snapshot the trainer calls `record(...)`; it evaluates G on many fresh z (a histogram needs far more
samples than the fixed-z grid has) and D on an x grid, and stores one small JSON blob (service/figure1.py
names it) in the same transaction style as the PNG snapshots. The gallery streams it as a `figure1` event.
The maths is numpy on callables, so it is tested without torch; only `torch_callables` touches torch.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from service.db import blobs
from service.db.engine import session_scope
from service.evaluation import figure1

Array = np.ndarray
GRID_POINTS = 161
BINS = 60
G_SAMPLES = 20_000
DATA_SAMPLES = 4_000


def kde(x: Array, points: Array) -> Array:
    """Gaussian kernel density of `points` at `x` with Silverman's bandwidth: a smooth p_data curve."""
    n = len(points)
    std = float(points.std()) or 1.0
    h = 1.06 * std * n ** (-1 / 5)
    u = (x[:, None] - points[None, :]) / h
    return np.exp(-0.5 * u * u).sum(axis=1) / (n * h * np.sqrt(2 * np.pi))


def x_range(data: Array, generated: Array) -> tuple[float, float]:
    """Where both densities live: the central 99.8 % of data and of G's samples, plus a margin."""
    lo = min(np.quantile(data, 0.001), np.quantile(generated, 0.001))
    hi = max(np.quantile(data, 0.999), np.quantile(generated, 0.999))
    margin = 0.1 * (hi - lo or 1.0)
    return float(lo - margin), float(hi + margin)


def compute(iteration: int, generate: Callable[[Array], Array], discriminate: Callable[[Array], Array],
            data: Array, latent_dim: int, noise_low: float, noise_high: float, seed: int = 0,
            density: Callable[[Array], Array] | None = None) -> dict[str, Any]:
    """The figure's curves. generate: (n, latent_dim) z -> (n, 1) x; discriminate: (n, 1) x -> (n,) D(x).
    z is drawn uniformly from the model's prior, as in the paper's figure. `density`: the data's true
    p_data(x) when known (a toy dataset's, models.datasets.toys.true_density); else a KDE of `data`."""
    rng = np.random.default_rng(seed)
    data = np.asarray(data, np.float64).reshape(-1)
    if len(data) > DATA_SAMPLES:  # the KDE is O(grid x points): a subsample draws the same curve
        data = rng.choice(data, DATA_SAMPLES, replace=False)
    z = rng.uniform(noise_low, noise_high, size=(G_SAMPLES, latent_dim)).astype(np.float32)
    generated = np.asarray(generate(z), np.float64).reshape(-1)
    lo, hi = x_range(data, generated)
    x = np.linspace(lo, hi, GRID_POINTS)
    edges = np.linspace(lo, hi, BINS + 1)
    counts, _ = np.histogram(generated, bins=edges)
    # Divided by all samples, not just those in range: mass G puts off the axis shows as missing area.
    g_density = counts / (len(generated) * (edges[1] - edges[0]))
    d = np.asarray(discriminate(x.astype(np.float32)[:, None]), np.float64).reshape(-1)

    def rounded(a: Array) -> list[float]:  # a few KB of JSON, not 17 digits per number
        return [round(float(v), 5) for v in a]

    p_data = np.asarray(density(x), np.float64).reshape(-1) if density is not None else kde(x, data)
    return {"iteration": int(iteration), "x": rounded(x), "data_density": rounded(p_data),
            "d": rounded(d), "bins": rounded(edges), "g_density": rounded(g_density)}


def store(job_id: uuid.UUID, fig: dict[str, Any], write_guard: Callable[[Any], None] | None = None) -> None:
    """One blob per iteration; `write_guard(session)` (e.g. the lease's fenced write) runs in the same
    transaction, so a worker that lost its job stores nothing."""
    with session_scope() as session:
        if write_guard is not None:
            write_guard(session)
        blobs.put(session, figure1.blob_key(job_id, fig["iteration"]),
                  json.dumps(fig, separators=(",", ":")).encode(), "application/json")


def torch_callables(generator: Any, discriminator: Any) -> tuple[Callable[[Array], Array],
                                                                  Callable[[Array], Array]]:
    """numpy wrappers around models.nets' G (z -> x) and D (x -> logit, turned into D(x) = sigmoid),
    without gradients. D is called without dropout masks: the test-time net, as the paper's figure shows."""
    import torch

    def wrap(module: Any, post: Callable[[Any], Any]) -> Callable[[Array], Array]:
        def run(a: Array) -> Array:
            param = next(module.parameters())
            with torch.no_grad():
                out = post(module(torch.as_tensor(a, dtype=param.dtype, device=param.device)))
            return out.float().cpu().numpy()
        return run

    return wrap(generator, lambda x: x), wrap(discriminator, torch.sigmoid)


_data_cache: dict[str, Array] = {}


def training_data(dataset: str) -> Array:
    """The run's training split, loaded once per worker process (the KDE subsamples it anyway)."""
    if dataset not in _data_cache:
        from models import datasets
        from service.settings import get_settings

        _data_cache[dataset] = np.asarray(datasets.load(dataset, get_settings().resolved_data_dir).train)
    return _data_cache[dataset]


def record(lease: Any, iteration: int, generator: Any, discriminator: Any, config: Any) -> None:
    """The one call a 1-D run makes per snapshot: compute Figure 1 and store it, fenced by the job's lease
    (worker.lease.Lease) so a worker that lost the job writes nothing. `config` is the run's TrainConfig."""
    from sqlalchemy import func

    from models.datasets.toys import true_density

    generate, discriminate = torch_callables(generator, discriminator)
    fig = compute(iteration, generate, discriminate, training_data(config.dataset), config.latent_dim,
                  -config.noise_scale, config.noise_scale, seed=iteration, density=true_density(config.dataset))
    store(lease.job_id, fig, lambda session: lease.write(session, heartbeat_at=func.now()))
