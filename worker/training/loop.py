"""Algorithm 1 of Goodfellow et al. (2014): the training loop, and its steps written with autograd.

Each iteration (config.update "alternating", the default): k D-steps, each on a fresh minibatch of data and
fresh z, ascending ½[log D(x) + log(1 − D(G(z)))]; then one G-step on fresh z, ascending log D(G(z))
(non-saturating, §3) or descending log(1 − D(G(z))) (minimax). D runs with dropout in both steps.
"simultaneous" is the authors' released code instead (AdversaryCost2): one dropout forward pass of a data
minibatch and G(z) gives both nets' gradients, G's taken through D before D moves, and both step.

`train` is the loop: the schedules (worker/training/optim.py), the steps of an engine
(worker/training/engine.py: AutogradEngine below for any architecture, or FusedEngine, worker/training/fused.py,
the MLP nets' hand-written passes; config.uses_fused_engine picks), and what it reports to the job through
its hooks (worker/training/hooks.py) at the configured intervals.

Metrics: d_loss, g_loss, d_real, d_fake, value, jsd are AVERAGES over the steps of the logging interval
(d_* and value from the D-steps' forward passes, g_loss from the G-steps'; accumulated on the device and
read when logged); lr and momentum are those of the interval's last iteration; it_per_s is measured over the
interval. Losses are checked for NaN/inf after every iteration on CPU (every log_every on a GPU, where a
check waits for the device). A bf16 run on a device without native bf16 trains in fp32 (device.bf16_fallback):
its rows carry bf16_fallback = 1 and the hooks' optional on_warning(text) gets the reason once.
"""

from __future__ import annotations

import logging
import math
import os
import time
from contextlib import AbstractContextManager

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import TrainConfig
from models.nets.common import derived_generator, noise, one_hot
from worker.training.device import bf16_fallback, training_device
from worker.training.engine import Engine
from worker.training.fused import FusedEngine
from worker.training.hooks import (
    SNAPSHOT_SAMPLES,
    NonFiniteLoss,
    TrainHooks,
    TrainingStopped,
    TrainOutcome,
    metrics_row,
)
from worker.training.optim import apply_gradients, learning_rate, max_col_norm, momentum, optimizer
from worker.training.space import DataSpace

log = logging.getLogger(__name__)


class AutogradEngine(Engine):
    """Algorithm 1's steps on the nn.Modules of models/nets, with autograd: any architecture. Each step draws
    its data and z, runs the nets forward, takes the loss's gradients and updates one net (or both).

    Conditional runs (config.conditional, `labels` (N,) given): a real row's c is its label; each fake row's c
    is a class drawn uniformly from the run's generator right after its z."""

    def __init__(self, config: TrainConfig, data: np.ndarray, device: torch.device, resume: bytes | None,
                 space: DataSpace | None = None, labels: np.ndarray | None = None) -> None:
        super().__init__(config, data, device, resume, space)
        self.x_all = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(device)   # (N, D)
        self.c_all: Tensor | None = None                            # (N, classes) one-hot of the labels
        if config.conditional:
            if labels is None or len(labels) != len(data):
                raise ValueError("a conditional run needs one label per training row")
            self.c_all = one_hot(torch.from_numpy(np.asarray(labels, dtype=np.int64)), config.num_classes).to(device)
        self.g_params, self.d_params = list(self.g.parameters()), list(self.d.parameters())
        self.set_optimizers(optimizer(self.g_params, config), optimizer(self.d_params, config))
        self.d_linears = [layer for layer in self.d.modules() if isinstance(layer, nn.Linear)]

    def draw_z(self) -> Tensor:
        """Fresh z (m, latent) ~ U[-s, s]^latent, from the run's generator."""
        s = self.config.noise_scale
        return torch.empty(self.m, self.config.latent_dim, device=self.device).uniform_(-s, s, generator=self.rng)

    def draw_c(self) -> Tensor | None:
        """Fresh classes (m, classes) one-hot, uniform, from the run's generator; None when unconditional."""
        if self.c_all is None:
            return None
        k = self.config.num_classes
        return one_hot(torch.randint(0, k, (self.m,), generator=self.rng, device=self.device), k)

    def real(self) -> tuple[Tensor, Tensor | None]:
        """The next minibatch (m, D) and its classes (m, classes) (None when unconditional)."""
        rows = self.batches.next()
        return self.x_all[rows], None if self.c_all is None else self.c_all[rows]

    def run_g(self, z: Tensor, c: Tensor | None) -> Tensor:
        """G(z) (m, D), or G(z, c) for a conditional run."""
        return self.g(z) if c is None else self.g(z, c)

    def run_d(self, x: Tensor, c: Tensor | None) -> Tensor:
        """D's logits with fresh dropout from the run's generator, given c for a conditional run."""
        return self.d(x, rng=self.rng) if c is None else self.d(x, rng=self.rng, c=c)

    def autocast(self) -> AbstractContextManager[None]:
        """bf16 products where config.bf16 (weights, gradients and updates stay fp32), else a no-op."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def d_step(self, lr: float, mu: float) -> None:
        x, c_real = self.real()                                     # (m, D) the next minibatch
        z, c_fake = self.draw_z(), self.draw_c()                    # (m, latent), (m, classes) or None
        with self.autocast():
            with torch.no_grad():
                fake = self.run_g(z, c_fake)                        # (m, D); G does not move in the D-step
            logits = self.run_d(torch.cat([x, fake]), _both(c_real, c_fake)).float()  # (2m, 1): real, fake
        loss = self.d_loss(logits)
        grads = torch.autograd.grad(loss, self.d_params)            # D's gradients; none reach G
        apply_gradients(self.d_opt, grads, lr, mu)
        max_col_norm(self.d_linears, self.config.d_max_col_norm)

    def g_step(self, lr: float, mu: float) -> None:
        z, c = self.draw_z(), self.draw_c()                         # (m, latent) fresh z (and c)
        with self.autocast():
            logits = self.run_d(self.run_g(z, c), c).float()        # (m, 1) through D with fresh dropout
        loss = self.g_loss(logits)
        grads = torch.autograd.grad(loss, self.g_params)            # G's only: D's are never computed
        apply_gradients(self.g_opt, grads, lr, mu)

    def joint_step(self, lr: float, mu: float) -> None:
        x, c_real = self.real()                                     # (m, D)
        z, c_fake = self.draw_z(), self.draw_c()                    # (m, latent)
        with self.autocast():
            logits = self.run_d(torch.cat([x, self.run_g(z, c_fake)]), _both(c_real, c_fake)).float()  # (2m, 1)
        d_loss, g_loss = self.d_loss(logits), self.g_loss(logits[self.m:])
        g_grads = torch.autograd.grad(g_loss, self.g_params, retain_graph=True)   # through D before D moves
        d_grads = torch.autograd.grad(d_loss, self.d_params)
        apply_gradients(self.g_opt, g_grads, lr, mu)
        apply_gradients(self.d_opt, d_grads, lr, mu)
        max_col_norm(self.d_linears, self.config.d_max_col_norm)

    def d_loss(self, logits: Tensor) -> Tensor:
        """D's loss ½[-log D(x) - log(1 - D(G(z)))] from its logits (2m, 1) on m real rows, then m fake ones;
        the step's values join the interval's statistics."""
        m = self.m
        nll_real = F.softplus(-logits[:m]).mean()                   # -log D(x) = softplus(-l)
        nll_fake = F.softplus(logits[m:]).mean()                    # -log(1 - D(G(z))) = softplus(l)
        with torch.no_grad():
            p = torch.sigmoid(logits)                               # D(x) rows, then D(G(z)) rows
            self.stats.d += torch.stack([nll_real, p[:m].mean(), nll_fake, p[m:].mean()]).view(2, 2)
        self.stats.d_steps += 1
        return 0.5 * (nll_real + nll_fake)

    def g_loss(self, logits: Tensor) -> Tensor:
        """G's loss from D's logits (m, 1) on its samples: -log D(G(z)) (non-saturating) or log(1 - D(G(z)))
        (minimax); it joins the interval's statistics."""
        loss = F.softplus(-logits).mean() if self.config.objective == "non-saturating" \
            else -F.softplus(logits).mean()
        self.stats.g += loss.detach()
        self.stats.g_steps += 1
        return loss


def _both(real: Tensor | None, fake: Tensor | None) -> Tensor | None:
    """D's c for its real rows, then its fake rows (None when unconditional)."""
    return None if real is None or fake is None else torch.cat([real, fake])


def train(config: TrainConfig, data: np.ndarray, hooks: TrainHooks, *, resume: bytes | None = None,
          device: str = "auto", labels: np.ndarray | None = None) -> TrainOutcome:
    """Run Algorithm 1 on `data` (N, D) float32 until config.iterations (continuing `resume` if given);
    `labels` (N,) int: the rows' classes, for a conditional config."""
    started = time.monotonic()
    dev = training_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    if data.ndim != 2 or len(data) < 1:
        raise ValueError(f"training data must be (N, D) with N >= 1, got shape {data.shape}")
    fallback = bf16_fallback(config, dev)
    if fallback:
        log.warning(fallback)
        config = config.replace(bf16=False)
        if hasattr(hooks, "on_warning"):
            hooks.on_warning(fallback)
    space = DataSpace.of(data) if config.standardize else None
    given = space.standardize(data) if space else data
    engine: Engine = FusedEngine(config, given, dev, resume, space) if config.uses_fused_engine else \
        AutogradEngine(config, given, dev, resume, space, labels)
    report = _Reports(config, engine, hooks, {"bf16_fallback": 1.0} if fallback else {})
    if engine.start == 0:
        report.figure1(0, "start")                              # Figure 1 (a): before any update
    for it in range(engine.start, config.iterations):
        if hooks.should_stop():
            raise TrainingStopped(f"stopped before iteration {it + 1}")
        lr, mu = learning_rate(config, it), momentum(config, it)
        if config.update == "simultaneous":
            engine.joint_step(lr, mu)
        else:
            for _ in range(config.k):
                engine.d_step(lr, mu)
            if it == 0:
                report.figure1(0, "after_d")                    # (b): D updated, G still as initialized
            engine.g_step(lr, mu)
        report.after(it + 1, lr, mu)
    return TrainOutcome(generator=engine.finish(), iterations=report.done, metrics=report.last_row,
                        seconds=time.monotonic() - started)


# 1-D runs draw Figure 1 at these iterations too, besides every snapshot: the first moves of the game.
EARLY_FIGURES = frozenset({1, 2, 5, 10, 20, 50})


class _Reports:
    """What the loop hands its hooks after each iteration, each at its interval: the finiteness check, metrics
    rows (with validation scores), snapshots and checkpoints."""

    def __init__(self, config: TrainConfig, engine: Engine, hooks: TrainHooks, flags: dict[str, float]) -> None:
        self.config, self.engine, self.hooks, self.flags = config, engine, hooks, flags   # flags join every row
        self.done = engine.start
        self.last_row: dict[str, float] = {}
        self.check_every = 1 if engine.device.type == "cpu" else config.log_every   # a check waits for the device
        # The snapshots' z: the same in every snapshot and across resumes, so grids show only G moving.
        self.fixed_z = noise((SNAPSHOT_SAMPLES, config.latent_dim), config.noise_scale,
                             derived_generator(config.seed, 3)).to(engine.device)
        self.log_t = self.checkpoint_t = time.monotonic()
        self.log_it = engine.start

    def after(self, done: int, lr: float, mu: float) -> None:
        self.done, config = done, self.config
        final = done == config.iterations
        if done % self.check_every == 0 or final:
            self.check_finite()
        if done % config.log_every == 0 or final:
            self.log(lr, mu, final)
        if done % config.snapshot_every == 0 or final:
            self.snapshot()
        elif done in EARLY_FIGURES:
            self.figure1(done, "after_g" if done == 1 else None)
        if not final and time.monotonic() - self.checkpoint_t >= config.checkpoint_seconds:
            self.hooks.on_checkpoint(done, self.engine.checkpoint(done))
            self.checkpoint_t = time.monotonic()

    def check_finite(self) -> None:
        nll_real, nll_fake, _, _, g_loss = self.engine.stats.sums()
        for name, value in (("d_loss", nll_real + nll_fake), ("g_loss", g_loss)):
            if not math.isfinite(value):
                where = f"iteration {self.done}" if self.check_every == 1 else \
                    f"iterations {self.done - self.check_every + 1}..{self.done}"
                raise NonFiniteLoss(f"{name} became {value} at {where}; the run diverged "
                                    f"(try a smaller lr or another seed)")

    def log(self, lr: float, mu: float, final: bool) -> None:
        stats, config, now = self.engine.stats, self.config, time.monotonic()
        row = metrics_row(config, self.done, lr, mu, stats.sums(), stats.d_steps, stats.g_steps,
                          (self.done - self.log_it) / max(now - self.log_t, 1e-9)) | self.flags
        if config.score_every and (self.done % config.score_every == 0 or final):    # a multiple of log_every
            g = self.engine.generator()
            g.eval()
            row = {**row, **self.hooks.on_score(self.done, g)}
            g.train()
        self.hooks.on_metrics(row)
        self.last_row = row
        stats.reset()
        self.log_t, self.log_it = time.monotonic(), self.done             # it/s leaves the scoring out

    def snapshot(self) -> None:
        g = self.engine.generator()
        g.eval()
        with torch.no_grad():
            samples = g(self.fixed_z).float().cpu().numpy()                 # (64, D)
        self.hooks.on_snapshot(self.done, samples)
        g.train()
        final = self.done == self.config.iterations
        self.figure1(self.done, "end" if final else "after_g" if self.done == 1 else None)

    def figure1(self, iteration: int, stage: str | None) -> None:
        """1-D toys: the paper's Figure 1 at this moment, when the hooks draw it. stage: "start" (before any
        update), "after_d" (D's first update, G as initialized), "after_g" (the first G update), "end"."""
        if self.engine.data_shape[1] != 1 or not hasattr(self.hooks, "on_figure1"):
            return
        g = self.engine.generator()
        g.eval()
        self.hooks.on_figure1(iteration, g, self.engine.discriminator(), stage)
        g.train()


__all__ = ["AutogradEngine", "train"]
