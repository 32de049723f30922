"""The update rules and schedules of both engines (worker/training/loop.py, worker/training/fused.py).

pylearn2's SGD: lr divided by lr_decay after every update (ExponentialDecay), momentum ramped per epoch
(MomentumAdjustor), the update inc = mu*inc - lr*grad; theta += inc. Or Adam, for the quick presets.
The schedules are pure functions of the update count: one update of each net per iteration (the k D-steps of
an iteration share its lr and momentum; an epoch is config.epoch_size iterations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from models.config import TrainConfig
from worker.training import native


def learning_rate(config: TrainConfig, update: int) -> float:
    """The lr of update `update` (0-based). lr_schedule "exponential": SGD's max(lr / lr_decay**update, lr_min)
    (pylearn2's ExponentialDecay divides by lr_decay after every update), Adam's config.lr, constant. "cosine",
    either optimizer: lr_min + (lr - lr_min)(1 + cos(pi t))/2, t = update / (iterations - 1), from lr at the
    first update to lr_min at the last."""
    if config.lr_schedule == "cosine":
        t = min(update / max(config.iterations - 1, 1), 1.0)
        return config.lr_min + (config.lr - config.lr_min) * 0.5 * (1.0 + math.cos(math.pi * t))
    if config.optimizer != "sgd":
        return config.lr
    exponent = update * math.log(config.lr_decay)
    return max(config.lr * math.exp(-exponent), config.lr_min) if exponent < 700 else config.lr_min


def momentum(config: TrainConfig, update: int) -> float:
    """SGD: pylearn2's MomentumAdjustor(start=1, saturate=momentum_saturate_epoch). Its counter is the number
    of on_monitor calls so far, and pylearn2's Train monitors once before the first epoch too: during epoch
    e (0-based, update // epoch_size) the counter is e + 1, so alpha = clamp(e / (saturate - 1), 0, 1) and
    mu = (1 - alpha) start + alpha end: 0.5 in epoch 1, 0.7 from epoch 250 on (1-based), the authors' schedule.
    Adam: beta1 (reported only)."""
    if config.optimizer != "sgd":
        return config.adam_betas[0]
    epoch, width = update // config.epoch_size, config.momentum_saturate_epoch - 1
    alpha = 1.0 if width <= 0 else min(epoch / width, 1.0)
    return (1.0 - alpha) * config.momentum_start + alpha * config.momentum_end


def _zeros_as(p: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """Zeros with p's strides: the fused passes pad each row to a cache line (worker/training/passes.py's
    padded), which zeros_like would not keep. A padded p's padding is allocated too (see _whole_rows)."""
    if p.is_contiguous():
        return torch.zeros_like(p, dtype=dtype)
    return _whole_rows(p).new_zeros(_whole_rows(p).shape, dtype=dtype)[:, :p.shape[1]]


class _LowPrecisionGrads:
    """One reusable bf16 (out, in + 1) gradient per layer for the bf16 products: a fresh 1200 x 1201 result
    every update would be a new mmap'd block, page-faulted in and converted again each time."""

    def __init__(self, params: Sequence[Tensor]) -> None:
        self.params = params
        self.bufs: dict[tuple[int, torch.dtype], Tensor] = {}

    def _buf(self, layer: int, dtype: torch.dtype) -> Tensor:
        if (layer, dtype) not in self.bufs:
            self.bufs[layer, dtype] = _zeros_as(self.params[layer], dtype)
        return self.bufs[layer, dtype]

    def product(self, layer: int, g: Tensor, a: Tensor) -> Tensor:
        """g.T @ a in g's dtype, written into the layer's buffer."""
        return torch.mm(g.t(), a, out=self._buf(layer, g.dtype))

    def product_fp32(self, layer: int, g: Tensor, a: Tensor) -> Tensor:
        """g.T @ a in g's dtype, widened into the layer's fp32 buffer (a reused one: a fresh block per update
        would be page-faulted in again each time)."""
        return self._buf(layer, torch.float32).copy_(self.product(layer, g, a))


class Momentum:
    """pylearn2's momentum rule: inc = mu*inc - lr*grad; theta += inc, per parameter tensor.

    Each increment is held as inc = s * u, with one scale s for all of the optimizer's tensors: an update
    multiplies s by mu and adds -lr*grad/s to u. So a weight-gradient product accumulates into u with beta = 1
    (the fused passes, worker/training/passes.py: the gradient of a packed [W | b] is scale * g.T @ a; MKL makes
    an extra pass over the result for any beta other than 0 or 1, ~0.15 ms on the paper's 1200 x 1201 layer),
    and theta += s*u follows at once, layer by layer, while u is still in cache. s is folded back into u
    (s = 1) before it gets small: one pass over the increments every ~45 updates at mu = 0.5. Checkpoints hold
    inc, and u and s for an exact resume.

    begin(lr, mu) once per update, then each tensor's gradient goes in by apply() (a gradient tensor), or by
    sink() (the fused passes). step() ends the update. `copies`: the passes' bf16 copies of the parameters; on
    the CPU the update then writes them in the same pass (kernels.c's momentum_bf16, `updates_copies`), else
    the passes refresh them after each update."""

    FOLD_BELOW = 2.0 ** -30

    def __init__(self, params: Sequence[Tensor], copies: Sequence[Tensor] | None = None) -> None:
        self.params = params
        self.copies = copies
        self._one_pass = native.momentum_bf16(params[0].device) if copies is not None else None
        self.updates_copies = self._one_pass is not None
        self.u = [_zeros_as(p) for p in params]
        self.s = 1.0
        self.beta = 1.0                                                     # 0 when mu = 0: u is overwritten
        self.low = _LowPrecisionGrads(params)
        self.lr = self.mu = 0.0
        self.grad_scale = torch.ones((), device=params[0].device)          # s / (lr * scale), set per use

    def begin(self, lr: float, mu: float) -> None:
        self.lr, self.mu = lr, mu
        if mu == 0.0:                                                       # inc = -lr * grad
            self.s, self.beta = 1.0, 0.0
            return
        if self.s * mu < self.FOLD_BELOW:
            for u in self.u:
                u.mul_(self.s)
            self.s = 1.0
        self.s *= mu
        self.beta = 1.0

    @torch.no_grad()
    def apply(self, i: int, grad: Tensor) -> None:
        u = self.u[i]
        if self.beta == 0.0:
            u.zero_()
        u.add_(grad, alpha=-self.lr / self.s)
        self.params[i].add_(u, alpha=self.s)

    def sink(self, layer: int, g: Tensor, a: Tensor, scale: float) -> None:
        u, step = self.u[layer], self.lr * scale
        if g.dtype == u.dtype:                         # (out, in+1): u += -(lr * scale / s) g.T @ a
            u.addmm_(g.t(), a, beta=self.beta, alpha=-step / self.s)
            self.params[layer].add_(u, alpha=self.s)
        elif self._one_pass is not None and self.copies is not None:     # bf16 product: u, theta, copy at once
            grad, theta, copy = self.low.product(layer, g, a), self.params[layer], self.copies[layer]
            self._one_pass(theta.data_ptr(), theta.stride(0), u.data_ptr(), u.stride(0), grad.data_ptr(),
                           grad.stride(0), copy.data_ptr(), copy.stride(0), theta.shape[0], theta.shape[1],
                           int(self.beta), -step / self.s, self.s)
        else:                                          # bf16 product, fp32 increments and weights
            # Both halves in one pass: torch's fused SGD does buf = buf + g'; theta -= lr'*buf (momentum 1,
            # or buf = g' on a "first step"). With buf = u, g' = -(step/s)*grad (maximize negates, grad_scale
            # divides) and lr' = -s, that is u += -(step/s) grad; theta += s*u. It reads each tensor as
            # contiguous: the packed layers' whole padded rows (see Adam).
            grad = _whole_rows(self.low.product_fp32(layer, g, a))
            torch._fused_sgd_([_whole_rows(self.params[layer])], [grad], [_whole_rows(u)], weight_decay=0.0,
                              momentum=1.0, lr=-self.s, dampening=0.0, nesterov=False, maximize=True,
                              is_first_step=self.beta == 0.0,
                              grad_scale=self.grad_scale.fill_(self.s / step if step else math.inf))

    def step(self) -> None:
        """Nothing left to do: apply() / sink() have updated every tensor."""

    def state_dict(self) -> dict[str, Any]:
        """inc (what the rule names), and u with s: a resumed run continues with the very same numbers."""
        return {"inc": [(u * self.s).detach().cpu() for u in self.u],
                "u": [u.detach().cpu() for u in self.u], "s": self.s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        exact = "u" in state                                   # checkpoints from before s*u hold inc alone
        for u, saved in zip(self.u, state["u"] if exact else state["inc"], strict=True):
            u.copy_(saved)
        self.s = float(state["s"]) if exact else 1.0


class Adam:
    """torch.optim.Adam(betas) at the loop's lr (begin(lr, mu) sets it; mu is beta1's, unused). Gradients go in by
    apply() or sink() (as Momentum); step() applies them."""

    updates_copies = False                                      # the passes refresh their bf16 copies

    def __init__(self, params: Sequence[Tensor], config: TrainConfig) -> None:
        self.params = params
        # torch's fused Adam reads each tensor as numel() consecutive numbers, which the rows of the passes'
        # padded layout are not: it steps the whole padded rows, whose padding has zero gradients and stays 0.
        self.whole = [_whole_rows(p) for p in params]
        self.grads: list[Tensor] = []                           # each parameter's gradient, a view of .grad
        for w, p in zip(self.whole, params, strict=True):
            w.grad = torch.zeros_like(w)
            self.grads.append(w.grad[:, :p.shape[1]] if w is not p else w.grad)
        self.low = _LowPrecisionGrads(params)
        # fused: one C++ kernel per step (no per-tensor Python loop, no MKL-VML sqrt calls).
        self.opt = torch.optim.Adam(self.whole, lr=config.lr, betas=config.adam_betas, fused=True)

    def begin(self, lr: float, mu: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def apply(self, i: int, grad: Tensor) -> None:
        self.grads[i].copy_(grad)

    def sink(self, layer: int, g: Tensor, a: Tensor, scale: float) -> None:
        grad = self.grads[layer]
        if g.dtype == grad.dtype:
            grad.addmm_(g.t(), a, beta=0.0, alpha=scale)
        else:
            grad.copy_(self.low.product(layer, g, a)).mul_(scale)         # the scale in fp32, not bf16

    def step(self) -> None:
        self.opt.step()

    def state_dict(self) -> dict[str, Any]:
        return self.opt.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Moments saved in a padded parameter's own (rows, cols) shape go into its whole rows, zero-padded.
        for i, w in enumerate(self.whole):
            moments = state["state"].get(i, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in moments and moments[key].shape != w.shape:
                    whole = moments[key].new_zeros(w.shape)
                    whole[:, :moments[key].shape[1]] = moments[key]
                    moments[key] = whole
        self.opt.load_state_dict(state)


def _whole_rows(p: Tensor) -> Tensor:
    """p, or for a padded (rows, cols) view (worker/training/passes.py's padded) the (rows, row stride) tensor
    it is the left part of."""
    if p.is_contiguous():
        return p
    assert p.dim() == 2 and p.stride(1) == 1, "only row-padded matrices are laid out with gaps"
    return p.as_strided((p.shape[0], p.stride(0)), (p.stride(0), 1))


def optimizer(params: Sequence[Tensor], config: TrainConfig, copies: Sequence[Tensor] | None = None) -> Momentum | Adam:
    """config.optimizer's rule over `params` (the fused passes' packed layers or a module's parameters);
    `copies`: the passes' bf16 copies of them, if any (see Momentum)."""
    return Momentum(params, copies) if config.optimizer == "sgd" else Adam(params, config)


def apply_gradients(opt: Momentum | Adam, grads: Sequence[Tensor], lr: float, mu: float) -> None:
    """One update of every tensor of `opt`, from its gradient (in the order of opt's parameters)."""
    opt.begin(lr, mu)
    for i, grad in enumerate(grads):
        opt.apply(i, grad)
    opt.step()


def max_col_norm(linears: Sequence[nn.Linear], limit: float | None) -> None:
    """pylearn2's max_col_norm: rescale each unit's incoming weight vector (a row of W (out, in)) whose L2 norm
    exceeds `limit`, after every update of D."""
    if limit is not None:
        for lin in linears:
            w = lin.weight.data
            w.mul_((limit / w.norm(dim=1, keepdim=True).clamp_min(1e-30)).clamp_max(1.0))


__all__ = ["Adam", "Momentum", "apply_gradients", "learning_rate", "max_col_norm", "momentum", "optimizer"]
