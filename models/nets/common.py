"""What the MLP nets (models/nets/mlp.py) and the conv nets (models/nets/conv.py) share: the run's derived
random generators, the noise prior, pylearn2's init and dropout from the run's generator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn


def derived_generator(seed: int, tag: int) -> torch.Generator:
    """A CPU generator derived from the run's seed: tag 1 G's init, 2 D's init, 3 the fixed snapshot noise,
    4 the validation score's noise."""
    return torch.Generator().manual_seed((seed * 0x9E3779B97F4A7C15 + tag) % (2**63))


def noise(shape: tuple[int, ...], scale: float, generator: torch.Generator, device: torch.device | str = "cpu",
          dtype: torch.dtype = torch.float32) -> Tensor:
    """z ~ U[-scale, scale]^shape (scale sqrt(3): unit variance)."""
    return torch.empty(shape, dtype=dtype, device=device).uniform_(-scale, scale, generator=generator)


def init_uniform(modules: Sequence[nn.Module], irange: float, rng: torch.Generator) -> None:
    """pylearn2's irange init, in the order of `modules`: weights U(-irange, irange), biases 0."""
    for m in modules:
        weight = getattr(m, "weight", None)
        if weight is not None:
            weight.uniform_(-irange, irange, generator=rng)
        bias = getattr(m, "bias", None)
        if isinstance(bias, Tensor):
            bias.zero_()


def logit_of_mean(data_mean: np.ndarray, shape: tuple[int, ...]) -> Tensor:
    """G's output bias from the data (pylearn2's init_sigmoid_bias_from_marginals): the logit of the per-pixel
    training mean, clipped to [1e-7, 1 - 1e-7] so that pixels always 0 or 1 get a finite bias. float64."""
    mean = np.clip(np.asarray(data_mean, dtype=np.float64).reshape(shape), 1e-7, 1 - 1e-7)
    return torch.from_numpy(np.log(mean / (1.0 - mean)))


def dropout(a: Tensor, keep: float, rng: torch.Generator | None, mask: Tensor | None = None) -> Tensor:
    """a with each entry kept with probability `keep` and the kept ones scaled by 1/keep.

    The 0/1 mask is drawn from `rng`, the run's generator, so a resumed run replays the same masks; or it is
    given (a test replaying another computation's draws). With neither, or keep = 1: a itself (the test-time
    net, as pylearn2's weight scaling gives)."""
    if mask is None:
        if rng is None or keep >= 1.0:
            return a
        mask = torch.empty_like(a).bernoulli_(keep, generator=rng)
    return a * mask * (1.0 / keep)


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """(B,) class indices -> (B, num_classes) float32 one-hot rows: c as the conditional nets take it."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


def cycled_classes(rows: int, num_classes: int, device: torch.device | str = "cpu") -> Tensor:
    """(rows, num_classes) one-hot c of row i = class i mod num_classes: what a conditional G is given when the
    caller has no c (the snapshots' grid, the validation score), so every class shows equally."""
    return one_hot(torch.arange(rows, device=device) % num_classes, num_classes)


def with_class(z: Tensor, c: Tensor | None, num_classes: int, scale: float = 1.0) -> Tensor:
    """G's input: z (B, latent) with c (B, num_classes) times `scale` beside it (cycled classes when None); z
    alone for an unconditional G (num_classes 0)."""
    if not num_classes:
        return z
    if c is None:
        c = cycled_classes(z.shape[0], num_classes, z.device)
    c = c.to(z.dtype)
    return torch.cat([z, c * scale if scale != 1.0 else c], dim=1)     # (B, latent + classes)


def projection(project: nn.Linear | None, c: Tensor | None, h: Tensor) -> Tensor | float:
    """The projection discriminator's class term <V c, h> (Miyato & Koyama, 2018) on D's last hidden layer
    h (B, units): a conditional D's logit is out(h) + this; 0 for an unconditional D."""
    if project is None:
        return 0.0
    if c is None:
        raise ValueError("a conditional discriminator needs c (B, classes)")
    return (project(c.to(h.dtype)) * h).sum(1, keepdim=True)   # (B, 1)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["cycled_classes", "derived_generator", "dropout", "init_uniform", "logit_of_mean", "noise", "one_hot",
           "parameter_count", "projection", "with_class"]
