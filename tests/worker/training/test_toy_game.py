"""The toy-1d preset's game ends near p_g = p_data (the paper's Figure 1 (d)) for more than one seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import datasets
from models.config import PRESETS
from models.nets.common import noise
from tests.worker.training.test_fused import Recorder
from worker.training.loop import train


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, both, side="right") / len(a)
                               - np.searchsorted(b, both, side="right") / len(b))))


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_toy_1d_ends_near_the_data(seed: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = np.asarray(datasets.load("toy-1d", tmp_path).train, np.float32)           # N(4, 0.5), (N, 1)
    out = train(PRESETS["toy-1d"].replace(seed=seed), data, Recorder(), device="cpu")
    z = noise((10_000, 1), PRESETS["toy-1d"].noise_scale, torch.Generator().manual_seed(99))
    with torch.no_grad():
        x = out.generator(z).numpy().reshape(-1)                                      # data space
    reference = np.random.default_rng(seed).normal(4.0, 0.5, 10_000)
    assert abs(x.mean() - 4.0) < 0.4 and abs(x.std() - 0.5) < 0.05                 # within 10 %
    assert ks_distance(x, reference) < 0.05
