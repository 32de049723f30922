"""Noise and latent-space math: per-request priors, latent parsing, linear and spherical interpolation.

Numpy only. Every random draw comes from a generator built from the request's seed, never from global state,
so a (model version, seed, n) triple always names the same z.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Protocol

import numpy as np

from service.errors import InvalidParameter

# A seed a client can give or be given: it must fit in a signed 64-bit, header-friendly integer.
MAX_SEED = 2**63 - 1
METHODS = ("lerp", "slerp")
_SEED = re.compile(r"\s*\d+\s*")
# MAX_SEED has 19 digits; a longer run of digits is refused before int() (whose digit limit raises).
_SEED_DIGITS = len(str(MAX_SEED))


class Prior(Protocol):
    """What the noise needs from a model version (VersionInfo, or anything with these attributes)."""

    @property
    def latent_dim(self) -> int: ...

    @property
    def noise(self) -> dict[str, Any]: ...


def new_seed() -> int:
    """A fresh seed in 0..MAX_SEED for a request that gave none: OS entropy, no shared generator (and ~50x
    cheaper than building a numpy Generator for it)."""
    return int.from_bytes(os.urandom(8), "big") >> 1


def sample_noise(prior: Prior, n: int, seed: int) -> np.ndarray:
    """(n, latent_dim) float32 from the version's prior, drawn from a per-request PCG64.

    Row i depends only on (seed, i): the first row for n=1 is the first row for n=64, which is what lets
    /interpolate?z0=<seed> start exactly on /samples?seed=<seed>&n=1.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    kind = prior.noise.get("kind")
    if kind == "uniform":
        z = rng.uniform(prior.noise["low"], prior.noise["high"], size=(n, prior.latent_dim))
    elif kind == "normal":
        z = rng.normal(0.0, prior.noise.get("std", 1.0), size=(n, prior.latent_dim))
    else:
        raise ValueError(f"unsupported noise prior {prior.noise!r}")
    return z.astype(np.float32)


def check_seed(field: str, seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise InvalidParameter(field, f"must be an integer seed in 0..{MAX_SEED}; got {seed}")
    return seed


def parse_latent(field: str, text: str, prior: Prior) -> tuple[np.ndarray, int | None]:
    """`text` is an integer seed (its first draw from the prior) or latent_dim comma-separated finite floats.

    Returns (z as float32 (latent_dim,), the seed or None). A bare integer is always read as a seed.
    """
    allowed = (f"an integer seed in 0..{MAX_SEED}, or {prior.latent_dim} comma-separated finite floats "
               f"(the model's latent size)")
    if _SEED.fullmatch(text):
        if len(text.strip().lstrip("0")) > _SEED_DIGITS:
            raise InvalidParameter(field, f"must be {allowed}; the seed is too large (more than {_SEED_DIGITS} digits)")
        seed = int(text)
        if seed > MAX_SEED:
            raise InvalidParameter(field, f"must be {allowed}; the seed {seed} is too large")
        return sample_noise(prior, 1, seed)[0], seed
    try:
        values = [float(p) for p in text.split(",")]
    except ValueError:
        raise InvalidParameter(field, f"must be {allowed}; could not read {text[:80]!r}") from None
    if len(values) != prior.latent_dim:
        raise InvalidParameter(field, f"must be {allowed}; got {len(values)} values")
    z = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(z)):  # also catches values that overflow float32, such as 1e39
        bad = [i for i, v in enumerate(z) if not math.isfinite(float(v))][:5]
        raise InvalidParameter(field, f"must be {allowed}; non-finite values at positions {bad}")
    return z, None


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, method: str = "lerp") -> np.ndarray:
    """(steps, latent_dim) float32 from z0 to z1; the first row is z0 and the last z1, bit for bit.

    lerp is the straight line of the paper's Figure 3. slerp is White (2016)'s spherical interpolation,
    sin((1-t)w)/sin(w) z0 + sin(tw)/sin(w) z1 with w the angle between them: in high dimensions the prior's
    mass lies near a shell, which the straight line cuts through; for (anti)parallel vectors w is undefined
    and it falls back to lerp.
    """
    t = np.linspace(0.0, 1.0, steps)[:, None]
    a, b = z0.astype(np.float64), z1.astype(np.float64)
    if method == "lerp":
        path = (1.0 - t) * a + t * b
    elif method == "slerp":
        path = _slerp(a, b, t)
    else:
        raise InvalidParameter("method", f"must be one of {', '.join(METHODS)}; got {method!r}")
    out = path.astype(np.float32)
    out[0], out[-1] = z0, z1  # exact ends, whatever rounding did in between
    return out


def _slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return (1.0 - t) * a + t * b
    omega = math.acos(float(np.clip((a / na) @ (b / nb), -1.0, 1.0)))
    if math.sin(omega) < 1e-6:
        return (1.0 - t) * a + t * b
    return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega)
