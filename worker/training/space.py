"""Real-valued data (the toys) trained in standardized coordinates, served in the data's own.

With data far from 0 (toy-1d is N(4, 0.5)) and D's hidden biases initialized to 0, every maxout kink of D's
first layer sits at x = 0, outside the data: over the region where G's and the data's samples lie D is one
linear piece, a logistic regression that can only say "left or right". It separates the two densities while
their means differ, then flattens at D = 1/2 as soon as the means meet, with G's spread still wrong, and G gets
no gradient to fix it. Standardizing the points, (x - mean) / sd of the training set, puts the kinks inside the
data, where D can bend around a density of the wrong width (config.standardize).

The engines train on standardized points; the loop's hooks (snapshots, Figure 1, scores) get G and D wrapped to
speak data space, and the trained G has the mapping folded into its last layer, so the exported artifact is the
same plain MLP as any other and outputs data-space values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class DataSpace:
    mean: np.ndarray   # (D,) float64, the training set's
    sd: np.ndarray     # (D,) float64; a constant dimension gets 1

    @classmethod
    def of(cls, data: np.ndarray) -> DataSpace:
        mean = np.mean(data, axis=0, dtype=np.float64)
        sd = np.std(data, axis=0, dtype=np.float64)
        return cls(mean, np.where(sd > 0, sd, 1.0))

    def standardize(self, data: np.ndarray) -> np.ndarray:
        return ((np.asarray(data, np.float64) - self.mean) / self.sd).astype(np.float32)

    def generator(self, g: nn.Module) -> nn.Module:
        return _ToData(g, self)

    def discriminator(self, d: nn.Module) -> nn.Module:
        return _FromData(d, self)

    @torch.no_grad()
    def fold_into(self, g: nn.Module) -> nn.Module:
        """G's last Linear layer made to output data space: W <- sd W, b <- mean + sd b (a linear output)."""
        last = g.linears[-1]                                               # type: ignore[index]
        sd = torch.as_tensor(self.sd, dtype=last.weight.dtype)
        last.weight.mul_(sd[:, None])
        last.bias.mul_(sd).add_(torch.as_tensor(self.mean, dtype=last.bias.dtype))
        return g


class _Affine(nn.Module):
    """A net wrapped with the space's mean and sd as buffers on the net's device."""

    def __init__(self, net: nn.Module, space: DataSpace) -> None:
        super().__init__()
        self.net = net
        device = next(net.parameters()).device
        self.register_buffer("mean", torch.as_tensor(space.mean, dtype=torch.float32, device=device))
        self.register_buffer("sd", torch.as_tensor(space.sd, dtype=torch.float32, device=device))


class _ToData(_Affine):
    """G(z) in data space: mean + sd * G(z)."""

    def forward(self, z: Tensor) -> Tensor:
        return torch.addcmul(self.mean, self.net(z), self.sd)               # (B, D)


class _FromData(_Affine):
    """D of data-space points: D((x - mean) / sd)."""

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.sd)                         # (B, 1) logits


__all__ = ["DataSpace"]
