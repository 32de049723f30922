"""A 1-D run draws the paper's Figure 1 at its four stages — before any update, after D's first update, after
G's, the end — and at the first iterations, besides every snapshot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.config import PRESETS
from tests.worker.training.test_fused import Recorder
from worker.training.figure1 import torch_callables
from worker.training.loop import train


class FigureRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.figures: list[tuple[int, str | None, np.ndarray]] = []

    def on_figure1(self, iteration: int, generator: Any, discriminator: Any, stage: str | None = None) -> None:
        generate, discriminate = torch_callables(generator, discriminator)
        x = np.linspace(0.0, 8.0, 9, dtype=np.float32)[:, None]
        g_at_0 = generate(np.zeros((1, 1), np.float32)).reshape(-1)            # G(z = 0)
        self.figures.append((iteration, stage, np.concatenate([g_at_0, discriminate(x).reshape(-1)])))


@pytest.mark.parametrize("engine", ["fused", "autograd"])
def test_the_four_stages_and_the_first_moves_are_drawn(engine: str) -> None:
    config = PRESETS["toy-1d"].replace(iterations=60, snapshot_every=25, log_every=20, engine=engine)
    data = np.random.default_rng(0).normal(4.0, 0.5, size=(512, 1)).astype(np.float32)
    hooks = FigureRecorder()
    train(config, data, hooks, device="cpu")
    drawn = [(iteration, stage) for iteration, stage, _ in hooks.figures]
    assert drawn == [(0, "start"), (0, "after_d"), (1, "after_g"), (2, None), (5, None), (10, None),
                     (20, None), (25, None), (50, None), (60, "end")]
    (_, _, start), (_, _, after_d), (_, _, after_g) = hooks.figures[:3]
    assert start[0] == after_d[0] != after_g[0]                    # (b) moved D only; (c) moved G
    assert not np.array_equal(start[1:], after_d[1:])
