"""Parzen-window log-likelihood of Goodfellow et al. 2014, Table 1, as in the authors' parzen_ll.py.

log p(x) = logsumexp_i(-||x - mu_i||^2 / 2 sigma^2) - log N - d log(sigma sqrt(2 pi)),
sigma chosen on the first 1000 validation images from logspace(-1, 0, 10), reported as the test mean
and its standard error std/sqrt(n) (ddof=0). Numpy only (no torch: the API process imports this).

Speed: one float32 GEMM per (query block, centre block) gives ||mu||^2 - 2 x.mu for every pair; each
block is then reduced for EVERY sigma from that same product, in L2-sized row tiles on a thread pool
(numpy ufuncs release the GIL). exp runs in float32 after subtracting the row maximum (every term <= 1,
one term == 1, so nothing overflows and the sum never underflows to 0); row sums accumulate in float64.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

PAPER_SIGMA_GRID: np.ndarray = np.logspace(-1, 0, 10)
Sigmas = Sequence[float] | np.ndarray  # any 1-D sequence of bandwidths
_TILE_ELEMENTS = 1 << 18  # 256k float32 = 1 MiB per tile (+1 MiB scratch): the per-sigma passes stay in L2
_F32_MAX = float(np.finfo(np.float32).max)
# exp(-87) = 1.6e-38 is the smallest normal float32 result: flooring there costs < 1e-33 relative in a row
# sum that is >= 1, while subnormal exp outputs (arguments in (-103, -87)) run ~10x slower on x86.
_EXP_FLOOR = np.float32(-87.0)


@dataclass(frozen=True)
class ParzenResult:
    """Outcome of the paper's protocol; `grid` is (sigma, mean validation LL) for every sigma tried."""

    ll: float
    se: float
    sigma: float
    grid: list[tuple[float, float]]
    n_samples: int
    n_test: int
    n_valid: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "ll": self.ll, "se": self.se, "sigma": self.sigma,
            "grid": [{"sigma": s, "ll": v} for s, v in self.grid],
            "n_samples": self.n_samples, "n_test": self.n_test, "n_valid": self.n_valid,
            "seconds": self.seconds,
        }


def _validate(queries: Any, centres: Any, sigmas: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (queries, centres) as float32 C-contiguous (n, d) arrays and sigmas as float64 (S,)."""
    arrays = []
    for name, a in (("queries", queries), ("centres", centres)):
        a = np.asarray(a)
        if a.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array (n, d); got shape {a.shape}")
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"{name} must be non-empty; got shape {a.shape}")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"{name} must be numeric; got dtype {a.dtype}")
        a = np.ascontiguousarray(a, dtype=np.float32)
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        arrays.append(a)
    q, c = arrays
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"queries have dimension {q.shape[1]} but centres have {c.shape[1]}")
    s = np.asarray(sigmas, dtype=np.float64).reshape(-1) if np.ndim(sigmas) <= 1 else None
    if s is None or s.size == 0:
        raise ValueError("sigmas must be a non-empty 1-D sequence of numbers")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"sigmas must be finite and > 0; got {s.tolist()}")
    return q, c, s


def _normaliser(sigmas: np.ndarray, n_centres: int, dim: int) -> np.ndarray:
    """(S,) float64: log N + d log(sigma sqrt(2 pi)), subtracted from the logsumexp."""
    return math.log(n_centres) + dim * np.log(sigmas * math.sqrt(2.0 * math.pi))


def _reduce_tile(e: np.ndarray, xsq: np.ndarray, coef: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> None:
    """Write logsumexp_j(-coef_k * d_ij) into out[k, i] for one tile of rows.

    e: (r, w) float32 = ||mu_j||^2 - 2 x_i.mu_j, overwritten with d_ij - min_j d_ij >= 0;
    xsq: (r,) float64 ||x_i||^2; coef: (S,) float64 = 1/(2 sigma^2); scratch: >= r*w float32; out: (S, r).
    """
    m = e.min(axis=1)                                   # (r,) row minimum of ||mu||^2 - 2x.mu
    t = np.maximum(m, (-xsq).astype(np.float32))        # clamp d >= 0: shift so the min d becomes 0
    dmin = np.maximum(xsq + t, 0.0)                     # (r,) float64 smallest squared distance
    np.subtract(e, t[:, None], out=e)                   # u = d - dmin; >= 0 unless the clamp was active
    for i in np.flatnonzero(xsq + m < 0):               # rare: x (almost) equals a centre; clamp those rows
        np.maximum(e[i], 0.0, out=e[i])
    buf = scratch[: e.size].reshape(e.shape)
    for k, ck in enumerate(coef):
        np.multiply(e, np.float32(-min(ck, _F32_MAX)), out=buf)  # -u/(2 sigma^2) <= 0, max term is 0
        np.maximum(buf, _EXP_FLOOR, out=buf)                      # no subnormal exp results (10x slower)
        np.exp(buf, out=buf)                                      # float32 is safe: every term in (0, 1]
        s = buf.sum(axis=1, dtype=np.float64)                     # >= 1 (the min term), float64 accumulation
        out[k] = np.log(s) - ck * dmin


class _BlockReducer:
    """Reduces one (rows, centres) product block for every sigma, in L2-sized row tiles on a thread pool
    (numpy ufuncs release the GIL), each worker with its own scratch tile."""

    def __init__(self, coef: np.ndarray, rows: int, cols: int, n_threads: int | None) -> None:
        self.coef = coef                                                # (S,) 1 / (2 sigma^2)
        self.workers = max(1, n_threads if n_threads is not None else len(os.sched_getaffinity(0)))
        self.scratch = [np.empty(min(_TILE_ELEMENTS, rows * cols) + cols, np.float32) for _ in range(self.workers)]
        self.pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def _rows(self, e: np.ndarray, xsq: np.ndarray, out: np.ndarray, lo: int, hi: int, worker: int) -> None:
        step = max(1, _TILE_ELEMENTS // e.shape[1])                     # rows per L2-sized tile
        for r0 in range(lo, hi, step):
            r1 = min(r0 + step, hi)
            _reduce_tile(e[r0:r1], xsq[r0:r1], self.coef, self.scratch[worker], out[:, r0:r1])

    def reduce(self, e: np.ndarray, xsq: np.ndarray, out: np.ndarray) -> None:
        """out (S, r) = logsumexp over the block's centres of -coef * d, for e (r, w) = ||mu||^2 - 2 x.mu."""
        r = e.shape[0]
        if self.pool is None:
            self._rows(e, xsq, out, 0, r, 0)
            return
        bounds = np.linspace(0, r, self.workers + 1).astype(int)
        futures = [self.pool.submit(self._rows, e, xsq, out, int(bounds[i]), int(bounds[i + 1]), i)
                   for i in range(self.workers) if bounds[i] < bounds[i + 1]]
        for future in futures:
            future.result()


def _augmented_centres(c: np.ndarray) -> np.ndarray:
    """(N, d+1) float32 [mu, ||mu||^2]: with queries as [-2x, 1], ONE float32 product gives ||mu||^2 - 2 x.mu,
    so no separate pass adds ||mu||^2 to each block. ||mu||^2 is computed once per call (float64, then f32)."""
    ca = np.empty((c.shape[0], c.shape[1] + 1), np.float32)
    ca[:, :-1] = c
    ca[:, -1] = np.einsum("ij,ij->i", c, c, dtype=np.float64)
    return ca


def log_likelihoods(
    queries: np.ndarray,
    centres: np.ndarray,
    sigmas: Sigmas,
    *,
    query_batch: int = 1024,
    centre_batch: int = 10000,
    n_threads: int | None = None,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """(len(sigmas), n_queries) float64 log p(x) for each sigma.

    Memory: one (query_batch, centre_batch) float32 product block (40 MB at the defaults) plus 2 MiB per
    thread. `timings`, if given, accumulates gemm_seconds / gemm_flops (2*m*n*d of the distance products)
    / reduce_seconds / seconds, measured around whole blocks so it costs nothing measurable.
    """
    q, c, sig = _validate(queries, centres, sigmas)
    if query_batch < 1 or centre_batch < 1:
        raise ValueError("query_batch and centre_batch must be >= 1")
    t_start = time.perf_counter()
    (nq, dim), nc = q.shape, c.shape[0]
    qb, cb = min(query_batch, nq), min(centre_batch, nc)
    ca = _augmented_centres(c)                                      # (N, d+1)
    qa = np.empty((qb, dim + 1), np.float32)                        # (qb, d+1) [-2x, 1], reused per query block
    qa[:, dim] = 1.0
    xsq_all = np.einsum("ij,ij->i", q, q, dtype=np.float64)         # (nq,) ||x||^2
    flat = np.empty(qb * cb, np.float32)                            # product block storage, reused
    lse = np.full((sig.size, nq), -np.inf)                          # running logsumexp over centre blocks
    part = np.empty((sig.size, qb))                                 # one centre block's logsumexp
    clock = {"gemm_seconds": 0.0, "gemm_flops": 0.0, "reduce_seconds": 0.0}
    reducer = _BlockReducer(1.0 / (2.0 * sig * sig), qb, cb, n_threads)
    try:
        for q0 in range(0, nq, qb):
            r = min(qb, nq - q0)
            np.multiply(q[q0:q0 + r], np.float32(-2.0), out=qa[:r, :dim])   # exact (power of two)
            for c0 in range(0, nc, cb):
                w = min(cb, nc - c0)
                e = flat[: r * w].reshape(r, w)                     # (r, w) C-contiguous view for BLAS
                t0 = time.perf_counter()
                np.matmul(qa[:r], ca[c0:c0 + w].T, out=e)           # sgemm, transposed operand, no copy
                t1 = time.perf_counter()
                reducer.reduce(e, xsq_all[q0:q0 + r], part[:, :r])
                # exact combination across centre blocks: lse = log(exp(lse) + exp(part))
                np.logaddexp(lse[:, q0:q0 + r], part[:, :r], out=lse[:, q0:q0 + r])
                clock["gemm_seconds"] += t1 - t0
                clock["reduce_seconds"] += time.perf_counter() - t1
                clock["gemm_flops"] += 2.0 * r * w * dim
    finally:
        reducer.close()
    lse -= _normaliser(sig, nc, dim)[:, None]
    if timings is not None:
        for key, val in {**clock, "seconds": time.perf_counter() - t_start}.items():
            timings[key] = timings.get(key, 0.0) + val
    return lse


def naive_log_likelihoods(
    queries: np.ndarray, centres: np.ndarray, sigmas: Sigmas, *, query_batch: int = 1000
) -> np.ndarray:
    """The straightforward baseline, (S, n_queries) float64: for every sigma, recompute each query
    batch's distances (same float32 GEMM) and take a float64 max-shifted logsumexp."""
    q, c, sig = _validate(queries, centres, sigmas)
    if query_batch < 1:
        raise ValueError("query_batch must be >= 1")
    nq, dim = q.shape
    csq = np.einsum("ij,ij->i", c, c, dtype=np.float64)            # (N,)
    out = np.empty((sig.size, nq))
    for k, sigma in enumerate(sig):
        for q0 in range(0, nq, query_batch):
            x = q[q0:q0 + query_batch]                              # (b, d)
            xsq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
            d = xsq[:, None] + csq[None, :] - 2.0 * (x @ c.T).astype(np.float64)   # (b, N)
            a = -np.maximum(d, 0.0) / (2.0 * sigma * sigma)
            amax = a.max(axis=1, keepdims=True)
            out[k, q0:q0 + query_batch] = amax[:, 0] + np.log(np.exp(a - amax).sum(axis=1))
    return out - _normaliser(sig, c.shape[0], dim)[:, None]


def select_sigma(
    centres: np.ndarray,
    valid: np.ndarray,
    sigmas: Sigmas = PAPER_SIGMA_GRID,
    *,
    timings: dict[str, float] | None = None,
) -> tuple[float, list[tuple[float, float]]]:
    """(best sigma, [(sigma, mean validation LL)]): argmax of the mean LL, first on ties (numpy.argmax)."""
    ll = log_likelihoods(valid, centres, sigmas, timings=timings)   # (S, n_valid), one distance pass
    means = ll.mean(axis=1)
    grid = [(float(s), float(v)) for s, v in zip(np.asarray(sigmas, dtype=np.float64), means)]
    return grid[int(np.argmax(means))][0], grid


def evaluate(
    centres: np.ndarray,
    valid: np.ndarray,
    test: np.ndarray,
    sigmas: Sigmas = PAPER_SIGMA_GRID,
    n_valid: int | None = 1000,
    *,
    timings: dict[str, float] | None = None,
) -> ParzenResult:
    """The paper's protocol: choose sigma on valid[:n_valid] (None = full validation), then score test."""
    if n_valid is not None and n_valid < 1:
        raise ValueError(f"n_valid must be >= 1 or None; got {n_valid}")
    t0 = time.perf_counter()
    v = np.asarray(valid)
    v = v if n_valid is None else v[:n_valid]
    sigma, grid = select_sigma(centres, v, sigmas, timings=timings)
    ll = log_likelihoods(test, centres, [sigma], timings=timings)[0]    # (n_test,)
    return ParzenResult(
        ll=float(ll.mean()), se=float(ll.std() / math.sqrt(ll.size)), sigma=sigma, grid=grid,
        n_samples=int(np.shape(centres)[0]), n_test=int(ll.size), n_valid=int(v.shape[0]),
        seconds=time.perf_counter() - t0,
    )
