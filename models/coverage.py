"""Mode coverage: how many of a distribution's modes (or classes) a generator's samples reach.

A mode collapse shows as modes no sample lands on. For a Gaussian mixture (models/datasets/toys.py) a sample
belongs to its nearest centre when it lies within 3 standard deviations of it, and a mode counts as covered
when at least a quarter of its fair share of the samples (1 / modes) belongs to it, so a few stray samples do
not count as a mode. The same count over a classifier's labels gives the classes covered of image samples.
"""

from __future__ import annotations

import numpy as np

SIGMAS = 3.0               # a sample this many of the mode's sds from its centre or closer belongs to it
FAIR_SHARE_FRACTION = 0.25


def nearest_modes(points: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
    """(n,) the index of each point's (n, D) nearest centre (modes, D), or -1 where that centre is more than
    SIGMAS * std away."""
    points, centres = np.asarray(points, np.float64), np.asarray(centres, np.float64)
    sq = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)          # (n, modes)
    nearest = sq.argmin(axis=1)
    close = sq[np.arange(len(points)), nearest] <= (SIGMAS * std) ** 2
    return np.where(close, nearest, -1)


def classes_covered(labels: np.ndarray, classes: int) -> int:
    """How many of the classes 0..classes-1 hold at least FAIR_SHARE_FRACTION / classes of the labels (-1: no
    class) of n samples."""
    labels = np.asarray(labels)
    counts = np.bincount(labels[labels >= 0], minlength=classes)[:classes]
    return int((counts >= FAIR_SHARE_FRACTION * len(labels) / classes).sum())


def modes_covered(points: np.ndarray, centres: np.ndarray, std: float) -> int:
    """How many of a mixture's modes (centres (modes, D), each with this std) the points (n, D) cover."""
    return classes_covered(nearest_modes(points, centres, std), len(centres))


def near_share(points: np.ndarray, centres: np.ndarray, std: float) -> float:
    """The share of the points that belong to some mode (within SIGMAS * std of it): samples of quality."""
    return float((nearest_modes(points, centres, std) >= 0).mean())


__all__ = ["classes_covered", "modes_covered", "near_share", "nearest_modes"]
