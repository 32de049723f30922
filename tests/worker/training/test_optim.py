"""The cosine learning-rate schedule, and Adam stepping at the loop's lr in both engines."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch

from models.config import PRESETS
from tests.worker.training.test_fused import easy_data, tiny
from worker.training.checkpoint import load_checkpoint
from worker.training.engine import Engine
from worker.training.fused import FusedEngine
from worker.training.loop import AutogradEngine
from worker.training.optim import learning_rate

CPU = torch.device("cpu")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cosine_goes_from_lr_to_lr_min_over_the_iterations(optimizer: str) -> None:
    c = PRESETS["toy-1d"].replace(optimizer=optimizer, lr_schedule="cosine", lr=1e-3, lr_min=1e-5, iterations=3001)
    assert learning_rate(c, 0) == pytest.approx(1e-3, rel=1e-12)
    assert learning_rate(c, 1500) == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-12)      # half way: the mean
    assert learning_rate(c, 750) == pytest.approx(1e-5 + 0.99e-3 * (1 + math.cos(math.pi / 4)) / 2, rel=1e-12)
    assert learning_rate(c, 3000) == pytest.approx(1e-5, rel=1e-12)                  # the last update
    rates = [learning_rate(c, u) for u in range(3001)]
    assert all(a >= b for a, b in pairwise(rates))                                    # never rises


def test_exponential_keeps_todays_rates() -> None:
    assert PRESETS["paper-mnist"].lr_schedule == "exponential" == PRESETS["quick"].lr_schedule
    adam = PRESETS["quick"].replace(lr_decay=1.5)
    assert learning_rate(adam, 1000) == adam.lr                                      # Adam: constant


def _parameters(engine: Engine) -> list[torch.Tensor]:
    state = load_checkpoint(engine.checkpoint(1))
    return [t.clone() for net in ("generator", "discriminator") for t in state[net].values()]


@pytest.mark.parametrize("engine_class", [FusedEngine, AutogradEngine])
def test_adam_steps_at_the_loops_lr(engine_class: type[Engine]) -> None:
    # Adam's first step moves a parameter with a non-zero gradient by lr (m / sqrt(v) = sign(g) after bias
    # correction), so the largest move shows which lr the step used: the one given, not config.lr.
    config = tiny(optimizer="adam", lr=0.5, lr_decay=1.0, lr_schedule="cosine", lr_min=0.0)
    engine = engine_class(config, easy_data(), CPU, None)
    before = _parameters(engine)
    engine.d_step(0.01, 0.5)
    engine.g_step(0.01, 0.5)
    moved = max(float((a - b).abs().max()) for a, b in zip(_parameters(engine), before, strict=True))
    assert moved == pytest.approx(0.01, rel=1e-3)
