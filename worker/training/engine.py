"""The step interface between the training loop (worker/training/loop.py) and the code that computes a step.

An engine holds one run: its nets, their optimizers, the run's random generator and the training data on the
device. The loop asks it for Algorithm 1's steps at the iteration's learning rate and momentum — k `d_step`s
then a `g_step` (config.update "alternating"), or one `joint_step` ("simultaneous") — reads the logging
interval's sums from `stats`, takes `generator()` / `discriminator()` for snapshots and scores, and asks for
`checkpoint(iteration)`; `finish()` hands over the trained G.

Two engines implement it: AutogradEngine (worker/training/loop.py: autograd on the nn.Modules of models/nets,
any architecture) and FusedEngine (worker/training/fused.py: hand-written passes of the MLP/maxout nets);
config.uses_fused_engine picks. A new architecture needs nets in models/nets and, if its step differs, a step
method of its own; the loop stays as it is.

Randomness: one torch.Generator on the device, seeded with config.seed, draws (in this order) per D-step the
minibatch (worker/training/minibatches.py), z, then D's dropout masks; per G-step z, then the masks; per joint
step minibatch, z, masks. Its state and the data order go into every checkpoint (worker/training/checkpoint.py),
so a resumed run continues bit-identically on CPU on the engine that wrote the checkpoint (for the fused
engine: with the same implementation of D's elementwise steps, worker/training/elementwise.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn

from models.config import TrainConfig
from models.nets import build_discriminator, build_generator
from worker.training.checkpoint import load_checkpoint, restore_stream, run_checkpoint
from worker.training.minibatches import Minibatches
from worker.training.optim import Adam, Momentum
from worker.training.space import DataSpace


class StepStats:
    """Sums over the steps of one logging interval, kept on the device: reading them waits for it.

    d (2, 2): [[-log D(x), D(x)], [-log(1 - D(G(z))), D(G(z))]], batch means summed over the D-steps;
    g (1,): G's loss, batch means summed over the G-steps."""

    def __init__(self, device: torch.device) -> None:
        self.d = torch.zeros(2, 2, device=device)
        self.g = torch.zeros(1, device=device)
        self.d_steps = self.g_steps = 0

    def sums(self) -> list[float]:
        """[-log D(x), -log(1 - D(G(z))), D(x), D(G(z)), g_loss]: the order hooks.metrics_row reads."""
        (nll_real, d_real), (nll_fake, d_fake) = self.d.tolist()
        return [nll_real, nll_fake, d_real, d_fake, self.g.item()]

    def reset(self) -> None:
        self.d.zero_()
        self.g.zero_()
        self.d_steps = self.g_steps = 0


class Engine(ABC):
    """One run's state, built from its config and data (N, D), restored from `resume` (a checkpoint) if given.

    Subclasses build their optimizers over the parameters as they lay them out, then call set_optimizers().
    `space`: the data arrive standardized (config.standardize); generator(), discriminator() and finish() then
    speak data space."""

    def __init__(self, config: TrainConfig, data: np.ndarray, device: torch.device, resume: bytes | None,
                 space: DataSpace | None = None) -> None:
        n, dim = data.shape
        self.space = space                              # data given standardized (worker/training/space.py)
        self.config, self.device, self.data_shape, self.m = config, device, (n, dim), config.batch_size
        self.g = build_generator(config, np.asarray(np.mean(data, axis=0, dtype=np.float64))).to(device)
        self.d = build_discriminator(config, dim).to(device)
        self.rng = torch.Generator(device=device).manual_seed(config.seed)
        self.batches = Minibatches(config.data_order, n, self.m, self.rng, device)
        self.stats = StepStats(device)
        self.start = 0                                  # iterations done before this call (a resumed run's)
        self._saved: dict[str, Any] | None = None
        if resume is not None:
            self._saved = load_checkpoint(resume, config, (n, dim))
            self.g.load_state_dict(self._saved["generator"])
            self.d.load_state_dict(self._saved["discriminator"])
            restore_stream(self.rng, self.batches, self._saved, config.seed)
            self.start = int(self._saved["iteration"])

    def set_optimizers(self, g_opt: Momentum | Adam, d_opt: Momentum | Adam) -> None:
        """G's and D's update rules, with their state (momentum, Adam's moments) restored on a resume."""
        self.g_opt, self.d_opt = g_opt, d_opt
        if self._saved is not None:
            g_opt.load_state_dict(self._saved["opt_g"])
            d_opt.load_state_dict(self._saved["opt_d"])
            self._saved = None

    @abstractmethod
    def d_step(self, lr: float, mu: float) -> None:
        """One update of D on a fresh minibatch and fresh z; G does not move."""

    @abstractmethod
    def g_step(self, lr: float, mu: float) -> None:
        """One update of G on fresh z, through D with fresh dropout; D does not move."""

    @abstractmethod
    def joint_step(self, lr: float, mu: float) -> None:
        """Both nets' gradients from one forward pass of a minibatch and G(z), G's taken before D moves."""

    def generator(self) -> nn.Module:
        """G as an nn.Module on the device, to sample from, in data space (its mode is the caller's to set)."""
        return self.space.generator(self.g) if self.space is not None else self.g

    def discriminator(self) -> nn.Module:
        """D as an nn.Module on the device, of data-space points; it runs without dropout."""
        return self.space.discriminator(self.d) if self.space is not None else self.d

    def checkpoint(self, iteration: int) -> bytes:
        """The whole run after `iteration` iterations (worker/training/checkpoint.py's format)."""
        return run_checkpoint(self.config, self.data_shape, iteration, self.g, self.d, self.g_opt, self.d_opt,
                              self.rng, self.batches)

    def finish(self) -> nn.Module:
        """The trained G, in eval mode, fp32, on CPU, without gradients. The engine steps no more."""
        self.g.eval()
        self.g.requires_grad_(False)
        g = self.g.float().cpu()
        return self.space.fold_into(g) if self.space is not None else g


__all__ = ["Engine", "StepStats"]
