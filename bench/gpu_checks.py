"""The training checks bench/gpu_check.py runs on the GPU: plain functions, so that they need no pytest.

Each check trains small nets on the device through worker/training/loop.py's train and raises AssertionError
when the device's result is wrong. They are the CUDA counterparts of tests/worker/training (runs finish with
finite losses and fp32 weights, a seed repeats, a resumed run continues the uninterrupted one, the validation
scorer runs on the device), which run on the CPU only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from models.config import PRESETS, TrainConfig
from worker.training.device import native_bf16
from worker.training.hooks import TrainingStopped, TrainOutcome
from worker.training.loop import train
from worker.training.validation import ValidationScorer


class Recorder:
    """TrainHooks that keep rows, warnings and checkpoints; stop after `stop_after` iterations if given."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.rows: list[dict[str, float]] = []
        self.warnings: list[str] = []
        self.checkpoints: list[tuple[int, bytes]] = []
        self.stop_after, self.polls = stop_after, 0

    def on_metrics(self, row: dict[str, float]) -> None:
        self.rows.append(row)

    def on_snapshot(self, iteration: int, samples: np.ndarray) -> None:
        assert np.isfinite(samples).all(), f"non-finite snapshot at iteration {iteration}"

    def on_checkpoint(self, iteration: int, blob: bytes) -> None:
        self.checkpoints.append((iteration, blob))

    def on_score(self, iteration: int, generator: torch.nn.Module) -> dict[str, float]:
        return {}

    def on_warning(self, text: str) -> None:
        self.warnings.append(text)

    def should_stop(self) -> bool:
        self.polls += 1
        return self.stop_after is not None and self.polls > self.stop_after


def tiny(**overrides: Any) -> TrainConfig:
    base: dict[str, Any] = {"latent_dim": 8, "g_hidden": (64,), "d_hidden": (32,), "d_pieces": 2,
                            "batch_size": 32, "iterations": 40, "log_every": 10, "snapshot_every": 20,
                            "checkpoint_seconds": 1e9}
    return PRESETS["paper-mnist"].replace(**{**base, **overrides})


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def _trained(config: TrainConfig, data: np.ndarray, device: str, hooks: Recorder | None = None) -> TrainOutcome:
    return train(config, data, hooks or Recorder(), device=device)


def check_runs(data: np.ndarray, device: str) -> dict[str, Any]:
    """Both engines, both precisions, both update rules: finite rows, fp32 G on the CPU, bf16 kept or said."""
    native = native_bf16(torch.device(device))
    for engine in ("fused", "autograd"):
        for bf16 in (False, True):
            for update in ("alternating", "simultaneous"):
                hooks = Recorder()
                out = _trained(tiny(engine=engine, bf16=bf16, update=update), data, device, hooks)
                assert hooks.rows and all(math.isfinite(v) for row in hooks.rows for v in row.values())
                assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in out.generator.parameters())
                assert bool(hooks.warnings) == (bf16 and not native), hooks.warnings
    return {"runs": 8, "native_bf16": native}


def check_seed_repeats(data: np.ndarray, device: str) -> dict[str, Any]:
    diffs = {}
    for engine in ("fused", "autograd"):
        a, b = (_trained(tiny(engine=engine), data, device) for _ in range(2))
        diffs[engine] = _max_diff(a.generator, b.generator)
        assert diffs[engine] <= 1e-6, f"{engine}: two runs of one seed differ by {diffs[engine]:.3g}"
    return {"max_abs_diff": diffs}


def check_resume(data: np.ndarray, device: str) -> dict[str, Any]:
    """A run stopped at iteration 20 and resumed from its checkpoint ends where the uninterrupted run ends."""
    diffs = {}
    for engine in ("fused", "autograd"):
        config = tiny(engine=engine, checkpoint_seconds=1e-9)                 # a checkpoint every iteration
        whole = _trained(config, data, device)
        saver = Recorder(stop_after=20)
        try:
            _trained(config, data, device, saver)
        except TrainingStopped:
            pass
        iteration, blob = saver.checkpoints[-1]
        resumed = train(config, data, Recorder(), resume=blob, device=device)
        assert iteration == 20 and resumed.iterations == config.iterations
        diffs[engine] = _max_diff(whole.generator, resumed.generator)
        assert diffs[engine] <= 1e-5, f"{engine}: resumed run differs by {diffs[engine]:.3g}"
    return {"max_abs_diff": diffs}


def check_scorer(data: np.ndarray, device: str) -> dict[str, Any]:
    """Table 1's protocol on the validation rows, with G on the device."""
    config = tiny(iterations=10)
    g = _trained(config, data, device).generator.to(device)
    score = ValidationScorer(config, data[:300], n_samples=500)(g)
    assert math.isfinite(score["valid_ll"]), score
    return {k: round(v, 3) for k, v in score.items()}


CHECKS: dict[str, Callable[[np.ndarray, str], dict[str, Any]]] = {
    "runs": check_runs, "seed_repeats": check_seed_repeats, "resume": check_resume, "scorer": check_scorer}


def run_all(data: np.ndarray, device: str) -> dict[str, Any]:
    """{name: {ok, seconds, ...its figures or error}} for every check."""
    results: dict[str, Any] = {}
    for name, check in CHECKS.items():
        t0 = time.perf_counter()
        try:
            results[name] = {"ok": True, **check(data, device)}
        except Exception as exc:  # noqa: BLE001 - a failed check is a result; the report carries every one
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        results[name]["seconds"] = round(time.perf_counter() - t0, 2)
    return results


__all__ = ["CHECKS", "Recorder", "run_all", "tiny"]
