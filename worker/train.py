"""Algorithm 1 of Goodfellow et al. (2014), literally, with the authors' MNIST recipe (models.config).

Each iteration: k D-steps, each on a fresh minibatch of data and fresh z, ascending
½[log D(x) + log(1 − D(G(z)))]; then one G-step on fresh z, ascending log D(G(z)) (non-saturating, §3) or
descending log(1 − D(G(z))) (minimax). D runs with dropout in both steps. Losses are computed from D's
logits with softplus, so they never overflow: −log D = softplus(−l), −log(1 − D) = softplus(l).

Randomness: one torch.Generator on the device, seeded with config.seed, draws (in this order, per D-step)
the minibatch indices (torch.randint: i.i.d. uniform over the training set, with replacement — Algorithm 1's
"sample a minibatch from the data generating distribution"), z, then D's dropout masks; per G-step z, then
the masks. Its state is in every checkpoint, so a resumed run is bit-identical on CPU.

Metrics: d_loss, g_loss, d_real, d_fake, value, jsd are AVERAGES over the steps of the logging interval
(computed from the D-step's forward pass, accumulated on the device, synchronised only when logged);
lr and momentum are those of the interval's last iteration; it_per_s is measured over the interval.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import TrainConfig
from models.nets import (
    DiscriminatorPass,
    Generator,
    GeneratorPass,
    build_discriminator,
    build_generator,
    derived_generator,
    noise,
)
from worker.checkpoint import config_key, load_checkpoint, save_checkpoint

SNAPSHOT_SAMPLES = 64


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite: the run diverged."""


class TrainingStopped(Exception):
    """hooks.should_stop() asked the run to stop."""


class TrainHooks(Protocol):
    def on_metrics(self, row: dict[str, float]) -> None: ...
    def on_snapshot(self, iteration: int, samples: np.ndarray) -> None: ...
    def on_checkpoint(self, iteration: int, blob: bytes) -> None: ...
    def should_stop(self) -> bool: ...


@dataclass
class TrainOutcome:
    generator: Generator          # eval mode, fp32, on CPU
    iterations: int               # completed iterations (including those before a resume)
    metrics: dict[str, float]     # the last metrics row ({} if no iteration ran)
    seconds: float                # wall time of this call


def learning_rate(config: TrainConfig, update: int) -> float:
    """SGD: lr of update `update` (0-based) = max(lr / lr_decay**update, lr_min) — pylearn2's ExponentialDecay
    divides by lr_decay after every update. Adam: config.lr, constant."""
    if config.optimizer != "sgd":
        return config.lr
    exponent = update * math.log(config.lr_decay)
    return max(config.lr * math.exp(-exponent), config.lr_min) if exponent < 700 else config.lr_min


def momentum(config: TrainConfig, update: int) -> float:
    """SGD: pylearn2's MomentumAdjustor(start=1, saturate=momentum_saturate_epoch). e = completed epochs
    (update // epoch_size); alpha = clamp((e - 1) / (saturate - 1), 0, 1); mu = (1 - alpha) start + alpha end.
    Adam: beta1 (reported only)."""
    if config.optimizer != "sgd":
        return config.adam_betas[0]
    epoch, width = update // config.epoch_size, config.momentum_saturate_epoch - 1
    alpha = (1.0 if epoch >= 1 else 0.0) if width <= 0 else min(max((epoch - 1) / width, 0.0), 1.0)
    return (1.0 - alpha) * config.momentum_start + alpha * config.momentum_end


_ONES: dict[tuple[int, torch.dtype, torch.device], Tensor] = {}


def _ones(g: Tensor) -> Tensor:
    """A cached vector of g.shape[0] ones: the bias gradient g.sum(0) as one fused g.T @ 1 (addmv)."""
    key = (g.shape[0], g.dtype, g.device)
    if key not in _ONES:
        _ONES[key] = torch.ones(g.shape[0], dtype=g.dtype, device=g.device)
    return _ONES[key]


class Momentum:
    """pylearn2's momentum rule, exactly: inc = mu*inc - lr*grad; theta += inc. The first half is fused
    into the weight-gradient product (addmm with beta=mu, alpha=-lr); the second follows at once, layer by
    layer, while the increment is still in cache."""

    def __init__(self, linears: list[nn.Linear]) -> None:
        self.params = [p for lin in linears for p in (lin.weight, lin.bias)]
        self.inc = [torch.zeros_like(p) for p in self.params]
        self.lr = self.mu = 0.0

    def begin(self, lr: float, mu: float) -> None:
        self.lr, self.mu = lr, mu

    @torch.no_grad()
    def sink(self, layer: int, g: Tensor, a: Tensor, scale: float) -> None:
        w, b = self.params[2 * layer], self.params[2 * layer + 1]
        w_inc, b_inc = self.inc[2 * layer], self.inc[2 * layer + 1]
        if g.dtype == w_inc.dtype:                     # (out, in) <- mu * inc - lr * scale * g.T @ a
            w_inc.addmm_(g.t(), a, beta=self.mu, alpha=-self.lr * scale)
            b_inc.addmv_(g.t(), _ones(g), beta=self.mu, alpha=-self.lr)       # bias grad = g.T @ 1
        else:                                          # bf16 product, fp32 increments
            w_inc.mul_(self.mu).add_(torch.mm(g.t(), a), alpha=-self.lr * scale)
            b_inc.mul_(self.mu).add_(g.sum(0, dtype=b_inc.dtype), alpha=-self.lr)
        w.add_(w_inc)
        b.add_(b_inc)

    def step(self) -> None:
        """Nothing left to do: sink() has updated every layer."""

    def state_dict(self) -> dict[str, Any]:
        return {"inc": [t.detach().cpu() for t in self.inc]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for t, saved in zip(self.inc, state["inc"], strict=True):
            t.copy_(saved)


class Adam:
    """torch.optim.Adam(lr, betas), no decay; the passes write the gradients into .grad."""

    def __init__(self, linears: list[nn.Linear], config: TrainConfig) -> None:
        self.params = [p for lin in linears for p in (lin.weight, lin.bias)]
        for p in self.params:
            p.grad = torch.zeros_like(p)
        # fused: one C++ kernel per step (no per-tensor Python loop, no MKL-VML sqrt calls).
        self.opt = torch.optim.Adam(self.params, lr=config.lr, betas=config.adam_betas, fused=True)

    def begin(self, lr: float, mu: float) -> None:
        pass

    def sink(self, layer: int, g: Tensor, a: Tensor, scale: float) -> None:
        w_grad, b_grad = self.params[2 * layer].grad, self.params[2 * layer + 1].grad
        assert w_grad is not None and b_grad is not None
        if g.dtype == w_grad.dtype:
            w_grad.addmm_(g.t(), a, beta=0.0, alpha=scale)
            b_grad.addmv_(g.t(), _ones(g), beta=0.0)
        else:
            w_grad.copy_(torch.mm(g.t(), a)).mul_(scale)
            b_grad.copy_(g.sum(0, dtype=b_grad.dtype))

    @torch.no_grad()
    def step(self) -> None:
        self.opt.step()

    def state_dict(self) -> dict[str, Any]:
        return self.opt.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state)


def _optimizer(linears: list[nn.Linear], config: TrainConfig) -> Momentum | Adam:
    return Momentum(linears) if config.optimizer == "sgd" else Adam(linears, config)


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _max_col_norm(linears: list[nn.Linear], limit: float | None) -> None:
    """Rescale each unit's incoming weight vector (a row of W (out, in)) whose L2 norm exceeds `limit`."""
    if limit is not None:
        for lin in linears:
            w = lin.weight.data
            w.mul_((limit / w.norm(dim=1, keepdim=True).clamp_min(1e-30)).clamp_max(1.0))


@torch.no_grad()
def train(config: TrainConfig, data: np.ndarray, hooks: TrainHooks, *, resume: bytes | None = None,
          device: str = "auto") -> TrainOutcome:
    """Run Algorithm 1 on `data` (N, D) float32 until config.iterations (continuing `resume` if given)."""
    started = time.monotonic()
    dev = _device(device)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    if data.ndim != 2 or len(data) < 1:
        raise ValueError(f"training data must be (N, D) with N >= 1, got shape {data.shape}")
    n, dim, m = data.shape[0], data.shape[1], config.batch_size
    cdt = torch.bfloat16 if config.bf16 else torch.float32
    gnet = build_generator(config, np.asarray(np.mean(data, axis=0, dtype=np.float64))).to(dev)
    dnet = build_discriminator(config, dim).to(dev)
    rng = torch.Generator(device=dev).manual_seed(config.seed)
    g_opt, d_opt = _optimizer(gnet.linears, config), _optimizer(dnet.linears, config)
    start = 0
    if resume is not None:
        state = load_checkpoint(resume, config, (n, dim))
        gnet.load_state_dict(state["generator"])
        dnet.load_state_dict(state["discriminator"])
        g_opt.load_state_dict(state["opt_g"])
        d_opt.load_state_dict(state["opt_d"])
        rng.set_state(state["rng"])
        start = int(state["iteration"])
    # The training set lives on the device as one tensor; minibatches are index draws from it.
    x_all = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(dev, cdt)   # (N, D)
    fixed_z = noise((SNAPSHOT_SAMPLES, config.latent_dim), config.noise_scale,
                    derived_generator(config.seed, 3)).to(dev)                          # same across resumes
    gp = GeneratorPass(gnet, m, cdt)
    dp = DiscriminatorPass(dnet, 2 * m, cdt, rng)
    s = config.noise_scale
    # D's input rows: m real, then m G(z). Constants of the D-step's loss, per row:
    sign = torch.ones(2 * m, 1, device=dev)
    sign[:m] = -1.0                                      # -log D(x) = softplus(-l), -log(1 - D) = softplus(l)
    target = torch.zeros(2 * m, 1, device=dev)
    target[:m] = -0.5 / m                                             # dl = (p - y) / (2m) = p / (2m) + target
    halves = torch.zeros(2, 2 * m, device=dev)                        # row means of each half, as one product
    halves[0, :m] = halves[1, m:] = 1.0 / m
    dstats = torch.zeros(2, 2, device=dev)  # sums of [[-log D(x), D(x)], [-log(1 - D(G(z))), D(G(z))]]
    gstat = torch.zeros(1, device=dev)      # sum of g_loss
    steps = [0, 0]                        # D-steps and G-steps in the logging interval
    check_every = 1 if dev.type == "cpu" else config.log_every      # a finiteness check syncs the device
    last_row: dict[str, float] = {}
    last_log_t, last_log_it = time.monotonic(), start
    last_ckpt = time.monotonic()

    def d_step(lr: float, mu: float) -> None:
        xin = dp.inputs[0]                                            # (2m, D): real rows, then G(z) rows
        idx = torch.randint(n, (m,), generator=rng, device=dev)
        torch.index_select(x_all, 0, idx, out=xin[:m])
        gp.z.uniform_(-s, s, generator=rng)
        gp.forward(out=xin[m:])                                       # no G backward: G is not updated here
        logits = dp.forward(xin).float()                              # (2m, 1), one pass for real and fake
        p = torch.sigmoid(logits)                                     # D(x) rows, then D(G(z)) rows
        dstats.addmm_(halves, torch.cat([F.softplus(logits * sign), p], 1))
        d_opt.begin(lr, mu)
        # d/dl of ½[mean softplus(-l_real) + mean softplus(l_fake)] = (p - y) / (2m)
        dp.backward(torch.add(target, p, alpha=0.5 / m).to(cdt), d_opt.sink, input_grad=False)
        d_opt.step()
        _max_col_norm(dnet.linears, config.d_max_col_norm)
        dp.refresh()
        steps[0] += 1

    def g_step(lr: float, mu: float) -> None:
        gp.z.uniform_(-s, s, generator=rng)                          # fresh z (Algorithm 1)
        x = gp.forward()                                              # (m, D)
        logits = dp.forward(x).float()                                # (m, 1) through D with fresh dropout
        p = torch.sigmoid(logits)
        if config.objective == "non-saturating":                      # G minimises -log D(G(z))
            gstat.add_(F.softplus(-logits).mean())
            dl = (p - 1.0) / m
        else:                                                         # G minimises log(1 - D(G(z)))
            gstat.sub_(F.softplus(logits).mean())
            dl = -p / m
        dx = dp.backward(dl.to(cdt), None, input_grad=True)          # input grads only: D is not updated
        assert dx is not None
        g_opt.begin(lr, mu)
        gp.backward(dx, g_opt.sink)
        g_opt.step()
        gp.refresh()
        steps[1] += 1

    def snapshot(done: int) -> None:
        gnet.eval()
        hooks.on_snapshot(done, gnet(fixed_z).float().cpu().numpy())
        if dim == 1 and hasattr(hooks, "on_figure1"):   # 1-D toys: the paper's Figure 1 (worker/toy_snapshot.py)
            hooks.on_figure1(done, gnet, dnet)

    def checkpoint(done: int) -> bytes:
        return save_checkpoint({
            "config": config_key(config), "data_shape": [n, dim], "iteration": done,
            "generator": gnet.state_dict(), "discriminator": dnet.state_dict(),
            "opt_g": g_opt.state_dict(), "opt_d": d_opt.state_dict(), "rng": rng.get_state()})

    def check_finite(done: int) -> None:
        (d_real_nll, _), (d_fake_nll, _) = dstats.tolist()
        for name, value in (("d_loss", d_real_nll + d_fake_nll), ("g_loss", gstat.item())):
            if not math.isfinite(value):
                where = f"iteration {done}" if check_every == 1 else f"iterations {done - check_every + 1}..{done}"
                raise NonFiniteLoss(f"{name} became {value} at {where}; the run diverged "
                                    f"(try a smaller lr or another seed)")

    done = start
    for it in range(start, config.iterations):
        if hooks.should_stop():
            raise TrainingStopped(f"stopped before iteration {it + 1}")
        lr, mu = learning_rate(config, it), momentum(config, it)
        for _ in range(config.k):
            d_step(lr, mu)
        g_step(lr, mu)
        done = it + 1
        final = done == config.iterations
        if done % check_every == 0 or final:
            check_finite(done)
        if done % config.log_every == 0 or final:
            check_finite(done)
            ((nll_real, d_real), (nll_fake, d_fake)), now = dstats.tolist(), time.monotonic()
            nd, ng = max(steps[0], 1), max(steps[1], 1)
            value = -(nll_real + nll_fake) / nd                       # mean log D(x) + mean log(1 - D(G(z)))
            last_row = {"iteration": float(done), "epoch": done / config.epoch_size, "lr": lr, "momentum": mu,
                        "d_loss": -0.5 * value, "g_loss": gstat.item() / ng, "d_real": d_real / nd,
                        "d_fake": d_fake / nd, "value": value, "jsd": (value + math.log(4.0)) / 2.0,
                        "it_per_s": (done - last_log_it) / max(now - last_log_t, 1e-9)}
            hooks.on_metrics(last_row)
            dstats.zero_()
            gstat.zero_()
            steps[0] = steps[1] = 0
            last_log_t, last_log_it = now, done
        if done % config.snapshot_every == 0 or final:
            snapshot(done)
        if not final and time.monotonic() - last_ckpt >= config.checkpoint_seconds:
            hooks.on_checkpoint(done, checkpoint(done))
            last_ckpt = time.monotonic()
    gnet.eval()
    return TrainOutcome(generator=gnet.float().cpu(), iterations=done, metrics=last_row,
                        seconds=time.monotonic() - started)


__all__ = [
    "Adam",
    "Momentum",
    "NonFiniteLoss",
    "TrainHooks",
    "TrainOutcome",
    "TrainingStopped",
    "learning_rate",
    "momentum",
    "train",
]
