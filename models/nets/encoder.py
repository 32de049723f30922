"""The learned inference net of the paper's section 7.2: E(x) -> z, trained after G to invert it
(worker/training/encoder.py trains it on pairs (G(z), z) with z from the prior).

x (B, D) [with c (B, classes) beside it when conditional] -> Linear+ReLU hidden layers (config.e_hidden) ->
Linear -> s * tanh, so E's z stays inside the prior's support [-s, s]^latent (s = config.noise_scale).
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from models.config import TrainConfig
from models.nets.common import derived_generator, with_class


class Encoder(nn.Module):
    def __init__(self, config: TrainConfig, input_dim: int) -> None:
        super().__init__()
        self.num_classes = config.num_classes
        dims = (input_dim + self.num_classes, *config.e_hidden, config.latent_dim)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(dims))
        self.scale = float(config.noise_scale)
        self.input_dim = input_dim

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        h = with_class(x, c, self.num_classes)                   # (B, D [+ classes])
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))                             # (B, hidden)
        return self.scale * torch.tanh(self.layers[-1](h))      # (B, latent) in (-s, s)


def build_encoder(config: TrainConfig, input_dim: int) -> Encoder:
    """E with PyTorch's default (Kaiming-uniform) init drawn from the run's derived generator (tag 6)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=derived_generator(config.seed, 6)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Encoder(config, input_dim)


__all__ = ["Encoder", "build_encoder"]
