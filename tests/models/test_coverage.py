"""Mode coverage (models/coverage.py) on the ring of 8 Gaussians."""

from __future__ import annotations

import numpy as np

from models.coverage import classes_covered, modes_covered, near_share, nearest_modes
from models.datasets.toys import TOYS


def test_modes_covered_counts_the_modes_the_samples_reach() -> None:
    ring = TOYS["toy-ring"]
    centres = np.asarray(ring.means)                                                 # (8, 2)
    rng = np.random.default_rng(0)
    all_modes = ring.sample(rng, 1024)
    assert modes_covered(all_modes, centres, ring.std) == 8 and near_share(all_modes, centres, ring.std) > 0.95
    collapsed = centres[[0, 0, 0, 3]].repeat(256, axis=0) + rng.normal(0, ring.std, (1024, 2))   # modes 0 and 3
    assert modes_covered(collapsed, centres, ring.std) == 2
    # A few stray samples at a mode do not cover it; points between modes belong to none.
    strays = np.concatenate([collapsed[:1000], centres[[5]].repeat(24, axis=0)])
    assert modes_covered(strays, centres, ring.std) == 2
    between = (centres[:1] + centres[1:2]) / 2
    assert nearest_modes(between, centres, ring.std).tolist() == [-1]
    assert classes_covered(np.array([0, 0, 1, 1, 2, -1, -1, -1]), 3) == 3
