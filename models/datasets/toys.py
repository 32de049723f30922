"""Toy datasets, generated from a fixed seed (no files): the 1-D Gaussian of the paper's Figure 1 and 2-D
Gaussian mixtures (a ring, a grid) on which mode collapse is easy to see.

Representation: a toy is a set of points, not images. Its Splits have (N, d) float32 rows of real numbers
(not clipped to [0, 1]) and image_shape (1, 1, d) — one channel, one row, d columns — so every consumer of
(C, H, W) (ONNX metadata, model versions, .npy output) works unchanged, while `kind == "toy"` tells the
sampling API to refuse image formats and answer points. The true density of each toy is exposed
(`true_density`) so Figure 1 can draw p_data itself rather than an estimate of it.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from models.datasets.base import Arrays, DatasetSpec

# Figure 1's data: N(4, 0.5^2). The gallery's Figure 1 tests draw the same distribution.
TOY_1D_MEAN = 4.0
TOY_1D_STD = 0.5
TOY_SEED = 2014  # pins the generated points, hence the toys' sha256
TOY_COUNTS = (20_000, 5_000, 5_000)


@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of isotropic Gaussians in d dimensions."""

    means: tuple[tuple[float, ...], ...]
    std: float
    description: str

    @property
    def dim(self) -> int:
        return len(self.means[0])

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        centres = np.asarray(self.means, dtype=np.float64)
        which = rng.integers(0, len(centres), size=n)
        return (centres[which] + rng.normal(0.0, self.std, size=(n, self.dim))).astype(np.float32)

    def density(self, x: np.ndarray) -> np.ndarray:
        """p_data(x) for x (n, d) (or (n,) when d == 1)."""
        pts = np.asarray(x, dtype=np.float64).reshape(-1, self.dim)
        centres = np.asarray(self.means, dtype=np.float64)
        sq = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(-1)               # (n, modes)
        norm = (2.0 * math.pi * self.std ** 2) ** (self.dim / 2.0)
        return np.exp(-0.5 * sq / self.std ** 2).mean(axis=1) / norm


def _ring(modes: int = 8, radius: float = 2.0) -> tuple[tuple[float, ...], ...]:
    return tuple((radius * math.cos(2 * math.pi * k / modes), radius * math.sin(2 * math.pi * k / modes))
                 for k in range(modes))


TOYS: dict[str, Mixture] = {
    "toy-1d": Mixture(((TOY_1D_MEAN,),), TOY_1D_STD,
                      f"Figure 1: a 1-D Gaussian N({TOY_1D_MEAN:g}, {TOY_1D_STD:g}^2)"),
    # Metz et al. (2017)'s ring: 8 modes on a circle of radius 2, std 0.02.
    "toy-ring": Mixture(_ring(), 0.02, "8 Gaussians (std 0.02) on a circle of radius 2"),
    "toy-grid": Mixture(tuple((float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)),
                        0.05, "25 Gaussians (std 0.05) on a 5 x 5 grid with spacing 2"),
}


@functools.cache
def generate(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The toy's read-only (train, valid, test) points, drawn once per process from TOY_SEED."""
    rng = np.random.default_rng([TOY_SEED, sum(name.encode())])
    parts = []
    for n in TOY_COUNTS:
        part = TOYS[name].sample(rng, n)
        part.flags.writeable = False
        parts.append(part)
    return parts[0], parts[1], parts[2]


@functools.cache
def digest(name: str) -> str:
    """sha256 of the generated points (shape and float32 bytes of each split): what a model trained on."""
    h = hashlib.sha256()
    for part in generate(name):
        h.update(f"{part.shape}".encode())
        h.update(part.tobytes())
    return h.hexdigest()


def _build(payloads: Mapping[str, bytes], name: str) -> Arrays:
    return generate(name)


def true_density(name: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """p_data of a toy as a function of x ((n, d) or (n,) for 1-D), or None for a dataset that is not one."""
    toy = TOYS.get(name)
    return None if toy is None else toy.density


def spec(name: str) -> DatasetSpec:
    toy = TOYS[name]
    return DatasetSpec(name=name, image_shape=(1, 1, toy.dim), files=(), build=functools.partial(_build, name=name),
                       kind="toy", counts=TOY_COUNTS, digest_of=functools.partial(digest, name),
                       source=f"generated (seed {TOY_SEED}): {toy.description}")


SPECS: dict[str, DatasetSpec] = {name: spec(name) for name in TOYS}

__all__ = ["SPECS", "TOYS", "TOY_1D_MEAN", "TOY_1D_STD", "TOY_COUNTS", "TOY_SEED", "Mixture", "digest",
           "generate", "true_density"]
