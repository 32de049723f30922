"""What the training loop (worker/training/loop.py) reports to its job (worker/train_job.py): the hooks it
calls, the metrics row it logs, its outcome and the errors that end it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from torch import nn

from models.config import TrainConfig

SNAPSHOT_SAMPLES = 64   # images in each progress grid, drawn from one fixed z per run


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite: the run diverged."""


class TrainingStopped(Exception):
    """hooks.should_stop() asked the run to stop."""


class TrainHooks(Protocol):
    def on_metrics(self, row: dict[str, float]) -> None: ...
    def on_snapshot(self, iteration: int, samples: np.ndarray) -> None: ...
    def on_checkpoint(self, iteration: int, blob: bytes) -> None: ...
    # Every config.score_every iterations and at the last one (when score_every > 0): the generator (eval mode,
    # on the training device) to score and, with keep "best", to keep. The values returned join that
    # iteration's metrics row, which on_metrics receives next.
    def on_score(self, iteration: int, generator: nn.Module) -> dict[str, float]: ...
    def should_stop(self) -> bool: ...
    # Optional, for 1-D data: on_figure1(iteration, generator, discriminator, stage) at each snapshot, a few
    # early iterations and the paper's stages (see loop.py), to draw Figure 1 (worker/training/figure1.py);
    # the loop calls it when the hooks have it.
    # Optional: on_warning(text) once before the first step, when the run differs from what the job asked
    # (bf16 on a device without native bf16 trains in fp32).


class QuietHooks:
    """TrainHooks that keep nothing and never stop a run: the base of benchmarks and tools that only time or
    sample a run (override should_stop to end it)."""

    def on_metrics(self, row: dict[str, float]) -> None: ...
    def on_snapshot(self, iteration: int, samples: np.ndarray) -> None: ...
    def on_checkpoint(self, iteration: int, blob: bytes) -> None: ...
    def on_score(self, iteration: int, generator: nn.Module) -> dict[str, float]:
        return {}
    def should_stop(self) -> bool:
        return False


@dataclass
class TrainOutcome:
    generator: nn.Module          # G (models/nets): eval mode, fp32, on CPU, without gradients
    iterations: int               # completed iterations (including those before a resume)
    metrics: dict[str, float]     # the last metrics row ({} if no iteration ran)
    seconds: float                # wall time of this call


def metrics_row(config: TrainConfig, done: int, lr: float, mu: float, sums: list[float], d_steps: int,
                g_steps: int, it_per_s: float) -> dict[str, float]:
    """One logging interval's row. sums: over the interval's D-steps, -log D(x), -log(1 - D(G(z))) (batch
    means), D(x), D(G(z)) (batch means); over its G-steps, the G loss. lr and momentum are the last update's.
    value is the minibatch estimate of V(D, G); jsd = (V + log 4) / 2 (eq. 6, at the current D)."""
    nll_real, nll_fake, d_real, d_fake, g_loss = sums
    nd, ng = max(d_steps, 1), max(g_steps, 1)
    value = -(nll_real + nll_fake) / nd                       # mean log D(x) + mean log(1 - D(G(z)))
    return {"iteration": float(done), "epoch": done / config.epoch_size, "lr": lr, "momentum": mu,
            "d_loss": -0.5 * value, "g_loss": g_loss / ng, "d_real": d_real / nd, "d_fake": d_fake / nd,
            "value": value, "jsd": (value + math.log(4.0)) / 2.0, "it_per_s": it_per_s}


__all__ = ["SNAPSHOT_SAMPLES", "NonFiniteLoss", "QuietHooks", "TrainHooks", "TrainOutcome", "TrainingStopped", "metrics_row"]
