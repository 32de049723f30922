"""One report of what a GPU does with the training code: `bench/gpu_check.sh` runs this (`make gpu-check`).

`python -m bench.gpu_check --out REPORT.json [--budget S] [--long-s S] [--dry]`. Sections, in order, each
written to the report as soon as it ends (a run cut short keeps what it finished):
  - device: the GPU (or CPU), its bf16 support, and the versions of what ran;
  - checks: bench/gpu_checks.py, the training checks on the device;
  - bench_train: bench/gpu_train.py, it/s of both engines in fp32 and bf16, plain and CUDA-graphed;
  - onnx_export: a G trained on the device, exported by worker/export.py and checked against torch there;
  - long_run: Table 1's recipe (paper-mnist, update simultaneous, seed 2, G kept by its validation score) for
    the epochs that fit in --long-s seconds, then the test Parzen score of the kept G (10,000 samples, sigma
    chosen on validation) beside the paper's 225 ± 2.
Needs torch, numpy, onnx, onnxruntime and pydantic, none of the web, database or Celery packages (the report
lists any that loaded). --dry: tiny sizes on whatever device there is, in seconds, to test the script itself.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
import torch

from bench import gpu_checks, gpu_train
from bench.machine import cpu_name
from models import datasets
from models.config import PRESETS, TrainConfig
from models.nets import build_generator
from models.nets.common import derived_generator, noise
from models.parzen import PAPER_SIGMA_GRID, evaluate
from worker.export import export_generator
from worker.training.device import REPORTED_CPU_FLAGS, cpu_flags, native_bf16
from worker.training.hooks import TrainingStopped
from worker.training.loop import train
from worker.training.validation import ValidationScorer

PAPER_MNIST_LL = (225.0, 2.0)          # Table 1, Gaussian Parzen window on MNIST: mean and standard error
SERVICE_STACK = ("service", "sqlalchemy", "psycopg", "celery", "billiard", "kombu", "redis", "fastapi", "starlette",
                 "httpx", "uvicorn")
_TEST_NOISE_TAG = 5                    # derived_generator tag of the final score's z (4 is validation's)


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": str(device), "native_bf16": native_bf16(device), "torch": torch.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(), "numpy": np.__version__,
        "onnx": onnx.__version__, "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "cpu": cpu_name(), "cpu_flags": [f for f in REPORTED_CPU_FLAGS if f in cpu_flags()],
        "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, capability=list(torch.cuda.get_device_capability(device)),
                    memory_gib=round(props.total_memory / 2**30, 1))
    return info


class _LongRunHooks(gpu_checks.Recorder):
    """Scores G on the validation split at each score_every and keeps the best G's weights (keep "best")."""

    def __init__(self, config: TrainConfig, valid: np.ndarray, n_samples: int, deadline: float) -> None:
        super().__init__()
        self.scorer = ValidationScorer(config, valid, n_samples=n_samples)
        self.deadline = deadline
        self.scores: list[dict[str, float]] = []
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None

    def on_score(self, iteration: int, generator: torch.nn.Module) -> dict[str, float]:
        score = self.scorer(generator)
        self.scores.append({"iteration": iteration, **{k: round(v, 2) for k, v in score.items()}})
        if self.best is None or score["valid_ll"] > self.best[0]:
            state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
            self.best = (score["valid_ll"], iteration, state)
        return score

    def should_stop(self) -> bool:
        return time.perf_counter() > self.deadline         # a safety net: the iterations were sized to fit


def long_run(splits: datasets.Splits, device: torch.device, seconds: float, it_per_s: float,
             dry: bool) -> dict[str, Any]:
    """Table 1's recipe for `seconds`: iterations sized from `it_per_s`, a fifth of the time left to scoring."""
    log_every = 10 if dry else 500                       # 500 iterations of 100 = one epoch of 50,000
    n_samples = 300 if dry else 10_000
    iterations = max(2, int(it_per_s * seconds * 0.8) // log_every) * log_every
    score_every = max(1, round(iterations / 5 / log_every)) * log_every
    config = PRESETS["paper-mnist"].replace(update="simultaneous", seed=2, keep="best", score_every=score_every,
                                            log_every=log_every, snapshot_every=10**9, checkpoint_seconds=1e9,
                                            iterations=iterations)
    if dry:
        config = gpu_checks.tiny(update="simultaneous", seed=2, keep="best", score_every=score_every,
                                 log_every=log_every, iterations=iterations)
    train_x, valid, test = (np.asarray(a, dtype=np.float32) for a in (splits.train, splits.valid, splits.test))
    hooks = _LongRunHooks(config, valid, n_samples, time.perf_counter() + seconds * 1.5)
    t0 = time.perf_counter()
    try:
        train(config, train_x, hooks, device=str(device))
    except TrainingStopped:
        pass
    trained_s = time.perf_counter() - t0
    assert hooks.best is not None, "no validation score before the deadline"
    best_ll, best_it, state = hooks.best
    g = build_generator(config, np.mean(train_x, axis=0, dtype=np.float64))
    g.load_state_dict(state)
    g.eval()
    z = noise((n_samples, config.latent_dim), config.noise_scale, derived_generator(config.seed, _TEST_NOISE_TAG))
    with torch.no_grad():
        samples = g(z).numpy()                                                    # (n_samples, 784)
    t1 = time.perf_counter()
    res = evaluate(samples, valid, test[:n_samples] if dry else test, PAPER_SIGMA_GRID)
    last = hooks.rows[-1] if hooks.rows else {}
    return {"config": {k: config.to_dict()[k] for k in ("preset", "update", "seed", "iterations", "score_every",
                                                         "keep", "engine", "data_order")},
            "seconds_budget": seconds, "train_seconds": round(trained_s, 1),
            "iterations_reached": int(last.get("iteration", 0)), "epochs_reached": round(last.get("epoch", 0), 2),
            "it_per_s_last": round(last.get("it_per_s", 0.0), 1), "validation_scores": hooks.scores,
            "selected_iteration": best_it, "selected_epoch": round(best_it / config.epoch_size, 2),
            "selected_valid_ll": round(best_ll, 2), "test_ll": round(res.ll, 2), "test_ll_se": round(res.se, 2),
            "test_sigma": round(res.sigma, 4), "test_samples": n_samples,
            "test_score_seconds": round(time.perf_counter() - t1, 1), "paper_ll": list(PAPER_MNIST_LL)}


def onnx_export(data: np.ndarray, device: torch.device, dry: bool) -> dict[str, Any]:
    """A G trained on the device, exported and checked with onnxruntime (CPU) against torch."""
    config = gpu_checks.tiny() if dry else PRESETS["paper-mnist"].replace(
        iterations=200, log_every=100, snapshot_every=10**9, checkpoint_seconds=1e9)
    out = train(config, data, gpu_checks.Recorder(), device=str(device))
    exported = export_generator(copy.deepcopy(out.generator), config, (1, 28, 28), {})
    return {"trained_on": str(device), "iterations": out.iterations, "onnx_bytes": len(exported.onnx),
            "max_abs_diff": exported.max_abs_diff, "sha256": exported.sha256}


def _section(report: dict[str, Any], out: Path, name: str, fn: Any) -> Any:
    t0 = time.perf_counter()
    try:
        report[name] = fn()
    except Exception as exc:  # noqa: BLE001 - a failed section is reported; the later ones still run
        report[name] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    if isinstance(report[name], dict):
        report[name]["section_seconds"] = round(time.perf_counter() - t0, 1)
    report["loaded_service_stack"] = sorted(m for m in SERVICE_STACK if m in sys.modules)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report[name]


def _data(data_dir: Path, dry: bool) -> datasets.Splits | None:
    try:
        return datasets.load("mnist", data_dir)
    except Exception:                    # a dry run may go without MNIST; a real one reports it missing
        if not dry:
            raise
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("GANSERVE_DATA_DIR", "~/.ganserve/data")))
    parser.add_argument("--long-s", type=float, default=150.0, help="seconds for the long run (0: none)")
    parser.add_argument("--bench-s", type=float, default=5.0, help="seconds per bench_train window")
    parser.add_argument("--dry", action="store_true", help="tiny sizes, seconds, any device")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report: dict[str, Any] = {"dry": args.dry, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _section(report, args.out, "device", lambda: device_info(device))
    splits = _data(args.data_dir.expanduser(), args.dry)
    data = np.asarray(splits.train if splits else np.random.default_rng(0).random((2000, 784)), np.float32)
    report["data"] = "mnist" if splits else "random (no mnist)"
    _section(report, args.out, "checks", lambda: gpu_checks.run_all(data[:2000], str(device)))
    bench_s = 0.5 if args.dry else args.bench_s
    bench = _section(report, args.out, "bench_train",
                     lambda: gpu_train.run(data, device, bench_s, warmup=3 if args.dry else 20))
    _section(report, args.out, "onnx_export", lambda: onnx_export(data if not args.dry else data[:2000], device,
                                                                  args.dry))
    rate = (bench.get("fused", {}).get("fp32", {}).get("plain", {}).get("it_per_s") or 20.0) \
        if isinstance(bench, dict) else 20.0
    long_s = min(args.long_s, 3.0) if args.dry else args.long_s
    if splits is not None and long_s > 0:
        _section(report, args.out, "long_run", lambda: long_run(splits, device, long_s, rate, args.dry))
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"gpu check report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
