"""Training speed of the paper-mnist nets (Algorithm 1, k = 1, batch 100) against the matrix-product ceiling.

`python -m bench.train [--seconds S] [--threads N] [--json]`. The run alternates short windows of
  - fp32 training with the fused engine (worker/training/loop.py's train itself, engine "fused", stopped
    through its should_stop hook): `it_per_s`,
  - fp32 training of the same nets with the autograd engine (engine "autograd"): `it_per_s_autograd`, so
    `fused_speedup` says what the hand-written passes (worker/training/passes.py) still buy,
  - fp32 fused training with D's elementwise steps as torch ops instead of the C kernels
    (worker/training/elementwise.py, native.py): `it_per_s_torch_ops`, so `native_speedup` says what the kernels buy
    (`kernels` says whether they were built here, or why not),
  - the GEMM ceiling: the matrix products of one iteration (same M, K, N and transpositions as the training
    step), run alone with torch.mm, back to back, and
  - bf16 training with the fused engine where the CPU multiplies bf16 natively (avx512_bf16 or AMX; elsewhere
    `it_per_s_bf16` is null, as a bf16 job there trains in fp32: worker/training/device.py),
so that all of them see the same machine. Headline rates are medians over iterations / passes; the lower
quartiles (`*_p25`: other processes only ever add time, so these estimate a quiet machine), the best and
the wall-clock means are reported beside them.

FLOPs per iteration (2·M·K·N per product; bias and elementwise work excluded — the training step folds
each bias into its product as one extra K column, not counted), m = batch:
  D-step: G forward on m rows (no G backward); D forward on 2m rows (real and G(z) in one pass);
          D weight gradients of all layers; D input gradients of all layers but the first (none into x).
  G-step: G forward on m fresh z; D forward on m rows; D input gradients of all layers (no D weight
          gradients); G weight gradients of all layers; G input gradients of all layers but the first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.machine import cpu_name
from models import datasets
from models.config import PRESETS, TrainConfig
from worker.training.device import REPORTED_CPU_FLAGS, cpu_flags, native_bf16
from worker.training.hooks import QuietHooks, TrainingStopped
from worker.training.loop import train
from worker.training.native import status as native_status
from worker.training.native import torch_ops_only

FLOPS_COUNTED = ("2*M*K*N per matrix product; D-step: G fwd (m rows), D fwd (2m rows), D weight grads, D input "
                 "grads of layers 2..L; G-step: G fwd (m), D fwd (m), D input grads of all layers, G weight "
                 "grads, G input grads of layers 2..L; no bias or elementwise work")

# (name, rows M, inner K, cols N, A transposed?, B transposed?) — C (M, N) = A (M, K) @ B (K, N).
Product = tuple[str, int, int, int, bool, bool]


def products(config: TrainConfig, data_dim: int) -> list[Product]:
    """The matrix products of one iteration, with the operand layouts the training step uses
    (weights are (out, in); activations and gradients (rows, features), row-major)."""
    m = config.batch_size
    g_dims = (config.latent_dim, *config.g_hidden, data_dim)
    g = list(pairwise(g_dims))                                   # (in, out) per G layer
    d_in = (data_dim, *config.d_hidden)
    d = [(a, b * config.d_pieces) for a, b in pairwise(d_in)] + [(d_in[-1], 1)]

    def forward(tag: str, layers: list[tuple[int, int]], rows: int) -> list[Product]:
        return [(f"{tag} fwd {i}", rows, a, b, False, True) for i, (a, b) in enumerate(layers)]    # x @ W.T

    def wgrad(tag: str, layers: list[tuple[int, int]], rows: int) -> list[Product]:
        return [(f"{tag} dW {i}", b, rows, a, True, False) for i, (a, b) in enumerate(layers)]     # g.T @ a

    def xgrad(tag: str, layers: list[tuple[int, int]], rows: int, first: int) -> list[Product]:
        return [(f"{tag} dx {i}", rows, b, a, False, False) for i, (a, b) in enumerate(layers)
                if i >= first]                                                                    # g @ W

    return (forward("D-step G", g, m) + forward("D-step D", d, 2 * m) + wgrad("D-step D", d, 2 * m)
            + xgrad("D-step D", d, 2 * m, 1)
            + forward("G-step G", g, m) + forward("G-step D", d, m) + xgrad("G-step D", d, m, 0)
            + wgrad("G-step G", g, m) + xgrad("G-step G", g, m, 1))


def flops(prods: list[Product]) -> int:
    return sum(2 * mm * k * n for _, mm, k, n, _, _ in prods)


def _operands(prods: list[Product], dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    ops = []
    for _, mm, k, n, ta, tb in prods:
        a = torch.rand((k, mm) if ta else (mm, k), generator=gen).to(dtype)
        b = torch.rand((n, k) if tb else (k, n), generator=gen).to(dtype)
        ops.append((a.t() if ta else a, b.t() if tb else b, torch.empty(mm, n, dtype=dtype)))
    return ops


def gemm_pass_times(prods: list[Product], seconds: float, dtype: torch.dtype = torch.float32) -> list[float]:
    """Seconds per back-to-back pass over all products (after one warm-up pass)."""
    ops = _operands(prods, dtype)
    times: list[float] = []
    end = time.perf_counter() + seconds
    first = True
    while first or not times or time.perf_counter() < end:  # at least one timed pass on a loaded machine
        t0 = time.perf_counter()
        for a, b, c in ops:
            torch.mm(a, b, out=c)
        if not first:
            times.append(time.perf_counter() - t0)
        first = False
    return times


class _Clock(QuietHooks):
    """TrainHooks that record the time of every iteration and stop the run after `seconds`."""

    def __init__(self, seconds: float, warmup: int = 3) -> None:
        self.seconds, self.warmup = seconds, warmup
        self.stamps: list[float] = []


    def should_stop(self) -> bool:
        self.stamps.append(time.perf_counter())
        return len(self.stamps) > self.warmup and self.stamps[-1] - self.stamps[self.warmup] >= self.seconds

    def iteration_times(self) -> list[float]:
        s = self.stamps[self.warmup:]
        return [b - a for a, b in pairwise(s)]


def train_iteration_times(config: TrainConfig, data: np.ndarray, seconds: float) -> list[float]:
    clock = _Clock(seconds)
    try:
        train(config, data, clock, device="cpu")
    except TrainingStopped:
        pass
    return clock.iteration_times()


def _data(data_dir: str | None) -> tuple[np.ndarray, str]:
    """Real MNIST when data_dir holds it, else uniform noise in [0, 1]: the speed does not depend on pixels."""
    if data_dir:
        try:
            return np.asarray(datasets.load("mnist", Path(data_dir)).train, dtype=np.float32), "mnist"
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to noise, and say why
            return _noise_data(), f"random (mnist unavailable: {type(exc).__name__})"
    return _noise_data(), "random"


def _noise_data() -> np.ndarray:
    return np.random.default_rng(0).random((50_000, 784), dtype=np.float32)


def run(seconds: float = 20, data_dir: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Measure for about `seconds` on `threads` CPUs (default: all this process may use; fewer: the process
    is pinned to that many, which the training loop turns into its thread count)."""
    cpus = sorted(os.sched_getaffinity(0))
    threads = min(threads or len(cpus), len(cpus))
    os.sched_setaffinity(0, cpus[:threads])
    try:
        return _run(seconds, data_dir, threads)
    finally:
        os.sched_setaffinity(0, cpus)


def _windows(config: TrainConfig, data: np.ndarray, prods: list[Product], seconds: float,
             has_bf16: bool) -> dict[str, list[float]]:
    """Seconds per iteration (per GEMM pass for "gemm") of each kind of run, in alternating windows."""
    rounds = max(1, min(4, int(seconds // 5)))
    share = seconds / rounds
    times: dict[str, list[float]] = {"fp32": [], "autograd": [], "torch_ops": [], "bf16": [], "gemm": []}
    for _ in range(rounds):
        times["fp32"] += train_iteration_times(config, data, share * (0.3 if has_bf16 else 0.4))
        times["autograd"] += train_iteration_times(config.replace(engine="autograd"), data, share * 0.15)
        with torch_ops_only():
            times["torch_ops"] += train_iteration_times(config, data, share * 0.15)
        times["gemm"] += gemm_pass_times(prods, share * (0.2 if has_bf16 else 0.3))
        if has_bf16:
            times["bf16"] += train_iteration_times(config.replace(bf16=True), data, share * 0.2)
    return times


def _run(seconds: float, data_dir: str | None, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    data, source = _data(data_dir)
    config = PRESETS["paper-mnist"].replace(iterations=10**7, log_every=10**7, snapshot_every=10**7,
                                            checkpoint_seconds=1e9, engine="fused")
    prods = products(config, data.shape[1])
    flop = flops(prods)
    times = _windows(config, data, prods, seconds, native_bf16(torch.device("cpu")))
    fp32_t, autograd_t, torch_ops_t, bf16_t, gemm_t = (times[k] for k in ("fp32", "autograd", "torch_ops", "bf16",
                                                                            "gemm"))
    it_s = 1.0 / statistics.median(fp32_t)
    it_autograd = 1.0 / statistics.median(autograd_t)
    it_torch_ops = 1.0 / statistics.median(torch_ops_t)
    gemm = flop / statistics.median(gemm_t) / 1e9
    it_bf16 = 1.0 / statistics.median(bf16_t) if bf16_t else None
    p25_train, p25_gemm = float(np.percentile(fp32_t, 25)), float(np.percentile(gemm_t, 25))
    return {
        "it_per_s": round(it_s, 2),
        "it_per_s_autograd": round(it_autograd, 2),
        "fused_speedup": round(it_s / it_autograd, 3),
        "it_per_s_torch_ops": round(it_torch_ops, 2),
        "native_speedup": round(it_s / it_torch_ops, 3),
        "kernels": native_status(),
        "it_per_s_bf16": round(it_bf16, 2) if it_bf16 else None,
        "flop_per_it": flop,
        "flops_counted": FLOPS_COUNTED,
        "gemm_gflops": round(gemm, 1),
        "fraction_of_gemm": round(it_s * flop / gemm / 1e9, 3),
        "bf16_speedup": round(it_bf16 / it_s, 3) if it_bf16 else None,
        "ceiling_it_per_s": round(gemm * 1e9 / flop, 2),
        # Lower quartiles: noise from other processes only adds time, so these estimate a quiet machine.
        "it_per_s_p25": round(1.0 / p25_train, 2),
        "it_per_s_autograd_p25": round(1.0 / float(np.percentile(autograd_t, 25)), 2),
        "gemm_gflops_p25": round(flop / p25_gemm / 1e9, 1),
        "fraction_of_gemm_p25": round(p25_gemm / p25_train, 3),
        "it_per_s_mean": round(len(fp32_t) / sum(fp32_t), 2),
        "it_per_s_best": round(1.0 / min(fp32_t), 2),
        "gemm_gflops_best": round(flop / min(gemm_t) / 1e9, 1),
        "iterations_timed": len(fp32_t),
        "autograd_iterations_timed": len(autograd_t),
        "bf16_iterations_timed": len(bf16_t),
        "products": len(prods),
        "data": source,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cpu_flags": [flag for flag in REPORTED_CPU_FLAGS if flag in cpu_flags()],   # of those the products use
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.train", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all usable CPUs)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object, last line")
    args = parser.parse_args(argv)
    result = run(args.seconds, args.data_dir, args.threads)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0 if math.isfinite(result["it_per_s"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
