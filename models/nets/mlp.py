"""The networks of Goodfellow et al. (2014) for any flattened data: a ReLU/sigmoid MLP generator and a maxout
discriminator with dropout. Plain nn.Modules: the autograd engine trains them, the exporter and the API's
samples run them; the fused engine (worker/training/fused.py) trains the same parameters with hand-written
passes (worker/training/passes.py).

Maxout layout: a hidden D layer is one Linear to pieces*units outputs ordered piece-major (row p*units + j
is piece p of unit j), so the max over pieces is a max over `pieces` contiguous (B, units) slices. It is
pylearn2's parameterization up to a fixed permutation of the rows (same shapes, same i.i.d. init).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models import datasets
from models.config import TrainConfig
from models.nets.common import derived_generator, dropout, init_uniform, logit_of_mean, projection, with_class


class Generator(nn.Module):
    """z (B, latent) [with c (B, classes) beside it when conditional, times config.g_class_scale] -> x (B, D):
    Linear+ReLU hidden layers, then Linear (+ sigmoid for pixels)."""

    def __init__(self, config: TrainConfig, output_dim: int) -> None:
        super().__init__()
        self.num_classes = config.num_classes
        self.class_scale = config.g_class_scale
        dims = (config.latent_dim + self.num_classes, *config.g_hidden, output_dim)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(dims))
        self.sigmoid_output = config.g_output == "sigmoid"
        self.latent_dim = config.latent_dim
        self.output_dim = output_dim

    @property
    def linears(self) -> list[nn.Linear]:
        return list(self.layers)  # type: ignore[arg-type]

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        h = with_class(z, c, self.num_classes, self.class_scale)  # (B, latent [+ classes])
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))                                 # (B, hidden)
        x = self.layers[-1](h)                                   # (B, D)
        return torch.sigmoid(x) if self.sigmoid_output else x


class Discriminator(nn.Module):
    """x (B, D) -> logit (B, 1) of "x is data": maxout hidden layers, then one sigmoid unit (as a logit).
    Conditional: c (B, classes) joins the first layer's input beside the (dropped-out) x, as the paper says,
    and the class's projection onto the last hidden layer joins the logit (models/nets/common.projection)."""

    def __init__(self, config: TrainConfig, input_dim: int) -> None:
        super().__init__()
        self.num_classes = config.num_classes
        dims = (input_dim + self.num_classes, *config.d_hidden)
        self.pieces = config.d_pieces
        self.units = tuple(config.d_hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b * self.pieces) for a, b in pairwise(dims))
        self.out = nn.Linear(dims[-1], 1)
        self.project = nn.Linear(self.num_classes, dims[-1], bias=False) if self.num_classes else None
        # Keep probability of each layer's input (dropout on the data, then on each maxout output).
        self.keeps = (config.d_input_keep,) + (config.d_hidden_keep,) * len(config.d_hidden)
        self.input_dim = input_dim

    @property
    def linears(self) -> list[nn.Linear]:
        return [*self.hidden, self.out]  # type: ignore[list-item]

    def forward(self, x: Tensor, rng: torch.Generator | None = None,
                masks: list[Tensor | None] | None = None, c: Tensor | None = None) -> Tensor:
        """Logits (B, 1). Dropout on every layer's input with fresh masks from `rng` (training), or with the
        given `masks[i]` (B, n_i) of 0/1; with neither, none (the test-time net). c: (B, classes) one-hot,
        required when conditional."""
        a = x                                                    # (B, D)
        for i, layer in enumerate(self.linears):
            a = dropout(a, self.keeps[i], rng, masks[i] if masks is not None else None)
            if i == 0 and self.num_classes:
                if c is None:
                    raise ValueError("a conditional discriminator needs c (B, classes)")
                a = torch.cat([a, c.to(a.dtype)], dim=1)         # (B, D + classes)
            if layer is self.out:
                return layer(a) + projection(self.project, c, a)  # (B, 1)
            pre = layer(a).view(a.shape[0], self.pieces, -1)     # (B, pieces, units)
            a = pre.amax(1)                                      # (B, units)
        raise AssertionError("unreachable")


@torch.no_grad()
def build_mlp_generator(config: TrainConfig, data_mean: np.ndarray | None,
                        output_dim: int | None = None) -> Generator:
    """G with the paper's init: weights U(-g_init_range, g_init_range), hidden biases 0, output bias the logit
    of the per-pixel training mean (when g_bias_from_data and the output is a sigmoid)."""
    dim = len(data_mean) if data_mean is not None else output_dim or datasets.dim_of(config.dataset)
    g = Generator(config, dim)
    init_uniform(g.linears, config.g_init_range, derived_generator(config.seed, 1))
    if data_mean is not None and config.g_bias_from_data and config.g_output == "sigmoid":
        g.linears[-1].bias.copy_(logit_of_mean(data_mean, (-1,)))
    return g


@torch.no_grad()
def build_mlp_discriminator(config: TrainConfig, input_dim: int) -> Discriminator:
    """D with the paper's init: weights U(-d_init_range, d_init_range), biases 0."""
    d = Discriminator(config, input_dim)
    init_uniform([*d.linears, *([d.project] if d.project is not None else [])], config.d_init_range,
                 derived_generator(config.seed, 2))
    return d


__all__ = ["Discriminator", "Generator", "build_mlp_discriminator", "build_mlp_generator"]
