"""The fused engine: Algorithm 1's steps on the paper's MLP/maxout nets (models/nets/mlp.py) by hand-written
passes (worker/training/passes.py), behind the step interface of worker/training/engine.py.

It computes what the autograd engine (worker/training/loop.py) computes, with no autograd graph: only the
products each step needs (no G backward in the D-step, no D weight gradients in the G-step, no gradient into
the data), D's losses differentiated by hand (p - y for softplus losses), and the momentum update fused into
each weight-gradient product. bf16 (config.bf16) works like autocast: products in bf16 on bf16 copies of the
fp32 weights, losses and updates in fp32. `ganserve bench train` reports both engines' speed on the same nets.
tests/worker/training/test_engines_agree.py replays its steps through the autograd engine.

D's losses are computed from its logits with softplus, so they never overflow: -log D = softplus(-l),
-log(1 - D) = softplus(l). Maxout ties send the gradient to every tied piece, as Theano's max did.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from models.config import TrainConfig
from models.nets.mlp import Discriminator, Generator
from worker.training.engine import Engine
from worker.training.optim import max_col_norm, optimizer
from worker.training.passes import DiscriminatorPass, GeneratorPass, padded
from worker.training.space import DataSpace


class FusedEngine(Engine):
    """The MLP nets' steps on preallocated buffers: D reads its input from one (2m, D + 1) buffer, the m real
    rows gathered from the training set on the device, then G(z) written in place."""

    def __init__(self, config: TrainConfig, data: np.ndarray, device: torch.device, resume: bytes | None,
                 space: DataSpace | None = None) -> None:
        super().__init__(config, data, device, resume, space)
        if not isinstance(self.g, Generator) or not isinstance(self.d, Discriminator):
            raise TypeError(f"the fused engine covers the mlp architecture only, not {config.architecture!r}")
        n, dim = self.data_shape
        m = self.m
        self.cdt = torch.bfloat16 if config.bf16 else torch.float32          # the products' dtype
        self.gp = GeneratorPass(self.g, m, self.cdt)
        self.dp = DiscriminatorPass(self.d, 2 * m, self.cdt, self.rng)
        copies = (self.gp.w, self.dp.w) if self.gp.copies else (None, None)          # bf16: the products' copies
        self.set_optimizers(optimizer(self.gp.packed, config, copies[0]), optimizer(self.dp.packed, config, copies[1]))
        # The training set on the device, in D's input layout (the constant column that carries D's first bias,
        # see passes._Pass): a minibatch is one index_select into D's input buffer.
        self.x_all = padded(n, dim + 1, self.cdt, device)                   # (N, D + 1)
        for lo in range(0, n, 8192):                  # (a writable copy per chunk: data may be read-only)
            self.x_all[lo:lo + 8192, :dim] = torch.from_numpy(np.array(data[lo:lo + 8192], dtype=np.float32))
        self.x_all[:, dim] = self.dp.inputs[0][0, dim]
        inputs = self.dp.inputs[0]
        self.x_real, self.x_fake, self.x_both = inputs[:m], inputs[m:, :dim], inputs[:, :dim]

    def draw_z(self) -> None:
        """Fresh z into G's input buffer (m, latent), from the run's generator."""
        s = self.config.noise_scale
        self.gp.z.uniform_(-s, s, generator=self.rng)

    def draw_data(self) -> None:
        """The next minibatch (m, D + 1) into the real rows of D's input buffer."""
        torch.index_select(self.x_all, 0, self.batches.next(), out=self.x_real)

    @torch.no_grad()
    def d_step(self, lr: float, mu: float) -> None:
        self.draw_data()
        self.draw_z()
        self.gp.forward(out=self.x_fake)                            # no G backward: G is not updated here
        logits = self.dp.forward(self.x_both).float()               # (2m, 1), one pass for real and fake
        self._update_d(self._d_dlogits(logits), lr, mu)

    @torch.no_grad()
    def g_step(self, lr: float, mu: float) -> None:
        self.draw_z()
        x = self.gp.forward()                                       # (m, D)
        logits = self.dp.forward(x).float()                         # (m, 1) through D with fresh dropout
        dx = self.dp.backward(self._g_dlogits(logits), None, input_grad=True)   # D is not updated
        assert dx is not None
        self._update_g(dx, lr, mu)

    @torch.no_grad()
    def joint_step(self, lr: float, mu: float) -> None:
        m = self.m
        self.draw_data()
        self.draw_z()
        self.x_fake.copy_(self.gp.forward())          # G's own buffer keeps G(z) for G's backward
        logits = self.dp.forward(self.x_both).float()               # (2m, 1)
        dl_d = self._d_dlogits(logits)
        dl_g = torch.zeros_like(dl_d)                               # the real rows carry no G gradient
        dl_g[m:] = self._g_dlogits(logits[m:])
        dx = self.dp.backward(dl_g, None, input_grad=True)          # through D before D moves
        assert dx is not None
        self._update_g(dx[m:], lr, mu)
        self._update_d(dl_d, lr, mu)

    def _d_dlogits(self, logits: Tensor) -> Tensor:
        """(2m, 1) gradient of D's loss w.r.t. its logits (m real rows, then m fake rows), in the products'
        dtype; adds the rows to the D-step statistics."""
        return self.dp.ops.d_head(logits, self.stats.d).to(self.cdt)

    def _g_dlogits(self, logits: Tensor) -> Tensor:
        """(m, 1) gradient of G's loss w.r.t. D's logits on its m samples; adds to the G-step statistics."""
        return self.dp.ops.g_head(logits, self.stats.g, self.config.objective == "non-saturating").to(self.cdt)

    def _update_d(self, dlogits: Tensor, lr: float, mu: float) -> None:
        self.d_opt.begin(lr, mu)
        self.dp.backward(dlogits, self.d_opt.sink, input_grad=False)    # no gradient into the data
        self.d_opt.step()
        max_col_norm(self.dp.linears, self.config.d_max_col_norm)
        if not self.d_opt.updates_copies or self.config.d_max_col_norm is not None:
            self.dp.refresh()
        self.stats.d_steps += 1

    def _update_g(self, dx: Tensor, lr: float, mu: float) -> None:
        self.g_opt.begin(lr, mu)
        self.gp.backward(dx, self.g_opt.sink)
        self.g_opt.step()
        if not self.g_opt.updates_copies:
            self.gp.refresh()
        self.stats.g_steps += 1

    def finish(self) -> torch.nn.Module:
        self.gp.release()                          # contiguous weights again, not views of the packed layout
        self.dp.release()
        return super().finish()


__all__ = ["FusedEngine"]
