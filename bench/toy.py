"""`ganserve bench toy`: does the toy-1d game end at p_g = p_data (the paper's Figure 1 (d))? Trains the preset
for each seed and compares 10,000 samples of G with 10,000 draws of the data's N(4, 0.5): mean, sd and the
two-sample Kolmogorov-Smirnov distance, with the training time and the CPU."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bench.train import cpu_name
from models import datasets
from models.config import PRESETS
from models.nets.common import noise
from worker.training.hooks import QuietHooks
from worker.training.loop import train


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, both, side="right") / len(a)
                               - np.searchsorted(b, both, side="right") / len(b))))


def run_seed(seed: int, data: np.ndarray, **overrides: Any) -> dict[str, float]:
    config = PRESETS["toy-1d"].replace(seed=seed, **overrides)
    t0 = time.perf_counter()
    out = train(config, data, QuietHooks(), device="cpu")
    seconds = time.perf_counter() - t0
    z = noise((10_000, 1), config.noise_scale, torch.Generator().manual_seed(99))
    with torch.no_grad():
        x = out.generator(z).numpy().reshape(-1)
    reference = np.random.default_rng(seed).normal(4.0, 0.5, 10_000)
    return {"seed": seed, "mean": float(x.mean()), "sd": float(x.std()), "ks": ks_distance(x, reference),
            "seconds": seconds}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ganserve bench toy", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object, last line")
    args = p.parse_args(list(argv) if argv is not None else None)
    data = np.asarray(datasets.load("toy-1d", tempfile.gettempdir()).train, np.float32)   # generated, no files
    rows = [run_seed(seed, data) for seed in range(args.seeds)]
    for r in rows:
        print(f"seed {r['seed']}: mean {r['mean']:.3f}  sd {r['sd']:.3f}  KS {r['ks']:.3f}  {r['seconds']:.1f} s")
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "preset": PRESETS["toy-1d"].to_dict(), "seeds": rows}))
    return 0
