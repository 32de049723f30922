"""The paper's Figure 1 of a toy-1d run: data density, G's density and D(x) on one x-axis.

`compute` evaluates G on many fresh z (a histogram needs far more samples than the fixed-z grid has) and D on
an x grid; the job stores the result at each snapshot (worker/figure1_store.py) and the gallery streams it as
a `figure1` event. The maths is numpy on callables, so it is tested without torch; only `torch_callables`
touches torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

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


def torch_callables(generator: Any, discriminator: Any) -> tuple[Callable[[Array], Array],
                                                                  Callable[[Array], Array]]:
    """numpy wrappers around G (models/nets) (z -> x) and D (x -> logit, turned into D(x) = sigmoid),
    without gradients. D is called without dropout masks: the test-time net, as the paper's figure shows."""
    import torch  # lazy: compute() is numpy alone, and so are the callers that only draw figures

    def wrap(module: Any, post: Callable[[Any], Any]) -> Callable[[Array], Array]:
        def run(a: Array) -> Array:
            param = next(module.parameters())
            with torch.no_grad():
                out = post(module(torch.as_tensor(a, dtype=param.dtype, device=param.device)))
            return out.float().cpu().numpy()
        return run

    return wrap(generator, lambda x: x), wrap(discriminator, torch.sigmoid)


__all__ = ["BINS", "GRID_POINTS", "compute", "kde", "torch_callables", "x_range"]
