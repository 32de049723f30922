"""`ganserve bench toy`: do the toy games end where the paper says, for every seed? Trains a toy preset once per
seed and draws n samples of the trained G. --toy 1d (toy-1d, Figure 1 (d)): p_g's mean and sd against the data's
N(4, 0.5) and its two-sample Kolmogorov-Smirnov distance to the training set, p_g read off G at n evenly spaced
quantiles of its 1-D uniform z (G's own distribution, not one random draw of it), and beside it the KS of n
random samples (z from the seed), which adds that draw's own deviation from uniform. --toy 2d
(toy-2d, the ring of 8 Gaussians): the modes covered (models/coverage.py) and the share of samples within 3 sd
of a mode. Prints the CPU and each run's training time."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bench.machine import cpu_name
from models import coverage, datasets
from models.config import PRESETS, TrainConfig
from models.datasets.toys import TOYS
from models.nets.common import noise
from worker.training.hooks import QuietHooks
from worker.training.loop import train

SAMPLES = 1024
PRESET_OF = {"1d": "toy-1d", "2d": "toy-2d"}


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, both, side="right") / len(a)
                               - np.searchsorted(b, both, side="right") / len(b))))


def trained(config: TrainConfig, data: np.ndarray) -> tuple[torch.nn.Module, float]:
    """G trained by `config` on `data`, and the training's seconds."""
    t0 = time.perf_counter()
    out = train(config, data, QuietHooks(), device="cpu")
    return out.generator, time.perf_counter() - t0


def random_z(config: TrainConfig, n: int) -> torch.Tensor:
    """(n, latent) z ~ U[-s, s] from the run's seed, as a sampling request draws it."""
    return noise((n, config.latent_dim), config.noise_scale, torch.Generator().manual_seed(config.seed))


def quantile_z(config: TrainConfig, n: int) -> torch.Tensor:
    """(n, 1) the midpoints of n equally likely intervals of a 1-D z ~ U[-s, s]: G of these is p_g's quantiles."""
    s = config.noise_scale
    return (-s + 2 * s * (torch.arange(n, dtype=torch.float32) + 0.5) / n).reshape(n, 1)


def run_seed(seed: int, data: np.ndarray, n: int = SAMPLES, **overrides: Any) -> dict[str, float]:
    """toy-1d at this seed: p_g's mean, sd and KS distance to `data` (N, 1), the training set, and the KS of n
    random samples."""
    config = PRESETS["toy-1d"].replace(seed=seed, **overrides)
    g, seconds = trained(config, data)
    with torch.no_grad():
        x, drawn = g(quantile_z(config, n)).numpy().reshape(-1), g(random_z(config, n)).numpy().reshape(-1)
    reference = data.reshape(-1)
    return {"seed": seed, "mean": float(x.mean()), "sd": float(x.std()), "ks": ks_distance(x, reference),
            "ks_draw": ks_distance(drawn, reference), "seconds": seconds}


def run_seed_2d(seed: int, data: np.ndarray, n: int = SAMPLES, **overrides: Any) -> dict[str, float]:
    """toy-2d at this seed: the ring's modes covered by n samples, and their share near a mode."""
    config = PRESETS["toy-2d"].replace(seed=seed, **overrides)
    g, seconds = trained(config, data)
    with torch.no_grad():
        x = g(random_z(config, n)).numpy()
    ring = TOYS[config.dataset]
    centres = np.asarray(ring.means)
    return {"seed": seed, "modes": coverage.modes_covered(x, centres, ring.std), "of": len(centres),
            "near": coverage.near_share(x, centres, ring.std), "seconds": seconds}


def _line(r: dict[str, float]) -> str:
    if "modes" in r:
        return (f"seed {r['seed']}: modes covered {r['modes']} of {r['of']}  within 3 sd of a mode "
                f"{r['near']:.1%}  {r['seconds']:.1f} s")
    return (f"seed {r['seed']}: mean {r['mean']:.3f}  sd {r['sd']:.3f}  KS {r['ks']:.3f}  (random draw: KS "
            f"{r['ks_draw']:.3f})  {r['seconds']:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ganserve bench toy", description=__doc__.split("\n")[0])
    p.add_argument("--toy", choices=sorted(PRESET_OF), default="1d", help="toy-1d (Figure 1) or toy-2d (the ring)")
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    p.add_argument("--n", type=int, default=SAMPLES, help="samples of each trained G")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object, last line")
    args = p.parse_args(list(argv) if argv is not None else None)
    preset = PRESETS[PRESET_OF[args.toy]]
    data = np.asarray(datasets.load(preset.dataset, tempfile.gettempdir()).train, np.float32)   # generated
    run = run_seed if args.toy == "1d" else run_seed_2d
    print(f"{preset.preset}, {args.n} samples per seed; CPU: {cpu_name()} ({len(os.sched_getaffinity(0))} cores)",
          flush=True)
    rows = []
    for seed in range(args.seeds):
        rows.append(run(seed, data, args.n))
        print(_line(rows[-1]), flush=True)
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "preset": preset.to_dict(), "n": args.n, "seeds": rows}))
    return 0
