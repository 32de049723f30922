"""The toy-1d preset's game ends at p_g = p_data (the paper's Figure 1 (d)) for every seed tried."""

from __future__ import annotations

import numpy as np
import pytest

from bench.toy import ks_distance, run_seed
from models import datasets
from models.datasets.toys import TOY_1D_MEAN, TOY_1D_STD


def test_ks_distance_is_the_largest_cdf_gap() -> None:
    assert ks_distance(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.0
    assert ks_distance(np.array([0.0, 0.1]), np.array([5.0, 6.0])) == 1.0
    assert ks_distance(np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0])) == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_toy_1d_ends_at_the_data(seed: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = np.asarray(datasets.load("toy-1d", tmp_path).train, np.float32)           # N(4, 0.5), (N, 1)
    r = run_seed(seed, data)                                                         # 1,024 samples of G
    assert abs(r["mean"] - TOY_1D_MEAN) < 0.1 * TOY_1D_MEAN                          # within 10 %
    assert abs(r["sd"] - TOY_1D_STD) < 0.1 * TOY_1D_STD
    assert r["ks"] < 0.05

