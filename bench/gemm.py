"""Plain matrix-product rates, the yardsticks the other benchmarks are measured against.

numpy only here (torch-free: the API process may import bench modules); a torch rate can live beside it.
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def numpy_gemm_gflops(m: int, n: int, k: int, seconds: float = 2.0, *, repeats: int = 5) -> float:
    """Median fp32 GFLOP/s of `a @ b.T` for float32 a (m, k), b (n, k), run back to back.

    Warms up (thread pool start, page faults of the output) first, then times `repeats` repetitions of
    enough back-to-back products to fill about `seconds` in total. The median, not the best, so that a
    rate measured once inside a real computation can be compared with it fairly.
    """
    if min(m, n, k) < 1 or seconds <= 0 or repeats < 1:
        raise ValueError("m, n, k and repeats must be >= 1 and seconds > 0")
    rng = np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32)                  # (m, k) C-contiguous
    b = rng.random((n, k), dtype=np.float32)                  # (n, k); b.T is passed to sgemm transposed
    out = np.empty((m, n), np.float32)                        # reused, as the Parzen code reuses its block
    flops = 2.0 * m * n * k
    t0 = time.perf_counter()
    np.matmul(a, b.T, out=out)                                # warm-up
    per_call = max(time.perf_counter() - t0, 1e-6)
    calls = max(1, int(seconds / repeats / per_call))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            np.matmul(a, b.T, out=out)
        rates.append(flops * calls / (time.perf_counter() - t0) / 1e9)
    return float(statistics.median(rates))
