"""The two engines compute the same steps: from the same state and the same random draws, one iteration of the
fused engine (hand-written passes) and one of the autograd engine (the nn.Modules) leave the same parameters.

The fused engine's draws (the minibatch rows, z, D's dropout masks) are recorded as it steps, then replayed
into the autograd engine; both are driven through the step interface the loop uses (worker/training/engine.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from models.config import TrainConfig
from models.nets.mlp import Discriminator
from tests.worker.training.test_fused import tiny
from worker.training.checkpoint import load_checkpoint
from worker.training.engine import Engine
from worker.training.fused import FusedEngine
from worker.training.loop import AutogradEngine
from worker.training.optim import learning_rate, momentum

CPU = torch.device("cpu")


def _record(monkeypatch: pytest.MonkeyPatch, engine: FusedEngine) -> list[tuple[str, Any]]:
    """Log ("rows", indices), ("z", z) and ("masks", D's masks) in the order the engine draws them."""
    log: list[tuple[str, Any]] = []
    next_rows, draw_z, d_forward = engine.batches.next, engine.draw_z, engine.dp.forward

    def rows() -> torch.Tensor:
        idx = next_rows()
        log.append(("rows", idx.clone()))
        return idx

    def z() -> None:
        draw_z()
        log.append(("z", engine.gp.z.clone()))

    def d(x: torch.Tensor) -> torch.Tensor:
        logits = d_forward(x)
        log.append(("masks", [m[: len(x)].clone() if m is not None else None for m in engine.dp.masks]))
        return logits

    monkeypatch.setattr(engine.batches, "next", rows)
    monkeypatch.setattr(engine, "draw_z", z)
    monkeypatch.setattr(engine.dp, "forward", d)
    return log


def _replay(monkeypatch: pytest.MonkeyPatch, engine: AutogradEngine, log: list[tuple[str, Any]]) -> None:
    """Make the engine take its draws from `log` instead of its generator."""
    draws: Iterator[tuple[str, Any]] = iter(log)

    def take(kind: str) -> Any:
        got, value = next(draws)
        assert got == kind, (got, kind)                         # the engines draw in the same order
        return value

    d = engine.d
    assert isinstance(d, Discriminator)
    monkeypatch.setattr(engine.batches, "next", lambda: take("rows"))
    monkeypatch.setattr(engine, "draw_z", lambda: take("z"))
    monkeypatch.setattr(d, "forward", lambda x, rng=None: Discriminator.forward(d, x, masks=take("masks")))


def _iteration(engine: Engine, config: TrainConfig) -> None:
    lr, mu = learning_rate(config, 0), momentum(config, 0)
    if config.update == "simultaneous":
        engine.joint_step(lr, mu)
    else:
        for _ in range(config.k):
            engine.d_step(lr, mu)
        engine.g_step(lr, mu)


def _state(engine: Engine) -> dict[str, dict[str, torch.Tensor]]:
    state = load_checkpoint(engine.checkpoint(1))
    return {"generator": state["generator"], "discriminator": state["discriminator"]}


def _one_iteration_each(monkeypatch: pytest.MonkeyPatch, config: TrainConfig) -> tuple[Engine, Engine, dict]:
    """The fused and the autograd engine after one iteration from the same init and draws, and that init."""
    # Dense data: a sparse row whose kept pixels are all 0 ties D's maxout pieces at the bias, where the
    # passes (like Theano's max) send the gradient to every tied piece and autograd's amax splits it.
    data = np.random.default_rng(1).random((256, 20), dtype=np.float32)
    fused, autograd = FusedEngine(config, data, CPU, None), AutogradEngine(config, data, CPU, None)
    start = _state(autograd)
    for net, tensors in _state(fused).items():                     # the same init
        assert all(torch.equal(tensors[name], start[net][name]) for name in tensors)
    log = _record(monkeypatch, fused)
    _iteration(fused, config)
    _replay(monkeypatch, autograd, log)
    _iteration(autograd, config)
    return fused, autograd, start


def _assert_close(value: torch.Tensor, ref: torch.Tensor, what: object, least: float = 1e-4) -> None:
    scale = float(ref.abs().max())
    assert scale > least, what                                     # the step moved this tensor
    assert float((value - ref).abs().max()) <= 1e-4 * scale, what


# SGD with momentum (the paper's): a step is proportional to the gradient, so agreeing gradients show as agreeing
# steps.
@pytest.mark.parametrize("update,k,extra", [
    ("alternating", 1, {}), ("alternating", 2, {}), ("simultaneous", 1, {}),
    ("alternating", 1, {"objective": "minimax"}), ("alternating", 1, {"d_max_col_norm": 0.5})])
def test_one_iteration_agrees(monkeypatch: pytest.MonkeyPatch, update: str, k: int, extra: dict[str, Any]) -> None:
    # A large lr and D init so that one step moves every parameter well beyond fp32 rounding.
    config = tiny(update=update, k=k, lr=2.0, d_init_range=0.3, **extra)
    fused, autograd, start = _one_iteration_each(monkeypatch, config)
    moved, expected = _state(fused), _state(autograd)
    for net in ("generator", "discriminator"):
        for name, ref in expected[net].items():
            _assert_close(moved[net][name] - start[net][name], ref - start[net][name], (net, name))
    # The interval's statistics (the metrics rows) agree too.
    assert fused.stats.sums() == pytest.approx(autograd.stats.sums(), rel=1e-5, abs=1e-6)
    assert (fused.stats.d_steps, fused.stats.g_steps) == (autograd.stats.d_steps, autograd.stats.g_steps)


def test_adam_moments_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adam's first step is lr * sign(gradient), which rounding flips where a gradient is ~0; its first moment,
    (1 - beta1) * gradient, is compared instead: the fused engine keeps one per packed [W | b] (+ padding),
    the autograd engine one per weight and per bias."""
    fused, autograd, _ = _one_iteration_each(monkeypatch, tiny("quick", d_init_range=0.3))
    for opt in ("opt_g", "opt_d"):
        packed = load_checkpoint(fused.checkpoint(1))[opt]["state"]
        separate = load_checkpoint(autograd.checkpoint(1))[opt]["state"]
        assert len(separate) == 2 * len(packed)
        for i, moments in packed.items():
            w, b = separate[2 * i]["exp_avg"], separate[2 * i + 1]["exp_avg"]
            m = moments["exp_avg"]                                  # (out, row stride): [W | b | padding]
            _assert_close(m[:, :w.shape[1]], w, (opt, i, "weight"), least=1e-6)
            _assert_close(m[:, w.shape[1]], b, (opt, i, "bias"), least=1e-6)
            assert int(torch.count_nonzero(m[:, w.shape[1] + 1:])) == 0      # the padding stays 0
