"""One training iteration of the hand-written passes equals the same maths done by autograd.

The fast path's draws (the data rows and z it fed G and D, D's dropout masks) are recorded, then replayed
through the nn.Modules with autograd and pylearn2's momentum rule: G's and D's parameters must agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.config import TrainConfig
from models.nets import mlp as nets
from models.nets.mlp import build_discriminator, build_generator
from tests.worker.training.test_fused import Recorder, tiny
from worker.training.checkpoint import load_checkpoint
from worker.training.fused import train
from worker.training.optim import learning_rate, momentum


def _record(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Wrap the passes' forwards to log ("z", z) and ("d", x, masks) in call order."""
    log: list[tuple[str, Any]] = []
    g_forward, d_forward = nets.GeneratorPass.forward, nets.DiscriminatorPass.forward

    def g(self: nets.GeneratorPass, out: torch.Tensor | None = None) -> torch.Tensor:
        log.append(("z", self.z.clone()))
        return g_forward(self, out)

    def d(self: nets.DiscriminatorPass, x: torch.Tensor) -> torch.Tensor:
        x_in = x.clone()                                          # forward masks its input in place
        logits = d_forward(self, x)
        log.append(("d", x_in, [m[: len(x_in)].clone() if m is not None else None for m in self.masks]))
        return logits

    monkeypatch.setattr(nets.GeneratorPass, "forward", g)
    monkeypatch.setattr(nets.DiscriminatorPass, "forward", d)
    return log


def _momentum_step(module: torch.nn.Module, incs: list[torch.Tensor], lr: float, mu: float) -> None:
    with torch.no_grad():
        for p, inc in zip(module.parameters(), incs, strict=True):
            assert p.grad is not None
            inc.mul_(mu).add_(p.grad, alpha=-lr)                  # inc = mu inc - lr grad; theta += inc
            p.add_(inc)
            p.grad = None


def _reference(config: TrainConfig, data: np.ndarray, log: list[tuple[str, Any]]) -> tuple[dict, dict]:
    """G's and D's parameters after one iteration, by autograd, from the recorded draws."""
    g = build_generator(config, data.astype(np.float64).mean(0))
    d = build_discriminator(config, data.shape[1])
    g_inc = [torch.zeros_like(p) for p in g.parameters()]
    d_inc = [torch.zeros_like(p) for p in d.parameters()]
    lr, mu, m = learning_rate(config, 0), momentum(config, 0), config.batch_size
    calls = iter(log)

    def d_loss(logits: torch.Tensor) -> torch.Tensor:                # ½[-log D(x) - log(1 - D(G(z)))]
        return 0.5 * (F.softplus(-logits[:m]).mean() + F.softplus(logits[m:]).mean())

    if config.update == "simultaneous":
        (_, z), (_, x, masks) = next(calls), next(calls)
        fake = g(z)
        logits = d(torch.cat([x[:m], fake]), masks)
        g_loss = F.softplus(-logits[m:]).mean()
        g_grads = torch.autograd.grad(g_loss, list(g.parameters()), retain_graph=True)
        d_grads = torch.autograd.grad(d_loss(logits), list(d.parameters()))
        for p, grad in [*zip(g.parameters(), g_grads), *zip(d.parameters(), d_grads)]:
            p.grad = grad
        _momentum_step(g, g_inc, lr, mu)
        _momentum_step(d, d_inc, lr, mu)
    else:
        for _ in range(config.k):
            (_, z), (_, x, masks) = next(calls), next(calls)
            with torch.no_grad():
                fake = g(z)
            d_loss(d(torch.cat([x[:m], fake]), masks)).backward()
            _momentum_step(d, d_inc, lr, mu)
        (_, z), (_, _, masks) = next(calls), next(calls)
        F.softplus(-d(g(z), masks)).mean().backward()
        d.zero_grad(set_to_none=True)                              # the G-step does not move D
        _momentum_step(g, g_inc, lr, mu)
    return g.state_dict(), d.state_dict()


@pytest.mark.parametrize("update,k", [("alternating", 1), ("alternating", 2), ("simultaneous", 1)])
def test_one_iteration_matches_autograd(monkeypatch: pytest.MonkeyPatch, update: str, k: int) -> None:
    # A large lr and D init so that one step moves every parameter well beyond fp32 rounding.
    config = tiny(update=update, k=k, iterations=2, checkpoint_seconds=0.0, lr=2.0, d_init_range=0.3)
    # Dense data: a sparse row whose kept pixels are all 0 ties D's maxout pieces at the bias, where the
    # passes (like Theano's max) send the gradient to every tied piece and autograd's amax splits it.
    data = np.random.default_rng(1).random((256, 20), dtype=np.float32)
    log = _record(monkeypatch)
    hooks = Recorder()
    train(config, data, hooks, device="cpu")
    iteration, blob = hooks.checkpoints[0]
    assert iteration == 1
    state = load_checkpoint(blob)
    g_ref, d_ref = _reference(config, data, log)
    g0 = build_generator(config, data.astype(np.float64).mean(0)).state_dict()
    d0 = build_discriminator(config, data.shape[1]).state_dict()
    for net, start, ref in (("generator", g0, g_ref), ("discriminator", d0, d_ref)):
        for name in ref:
            step, step_ref = state[net][name] - start[name], ref[name] - start[name]
            scale = float(step_ref.abs().max())
            assert scale > 1e-4, (net, name)                          # the step moved this tensor
            assert float((step - step_ref).abs().max()) <= 1e-4 * scale, (net, name)
