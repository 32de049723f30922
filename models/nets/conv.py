"""Figure 2d's CIFAR-10 networks (the authors' cifar10_convolutional.yaml): a "deconvolutional" generator and
a convolutional maxout discriminator, as plain nn.Modules trained by the autograd engine (worker/training/loop.py).

G: z (B, latent) -> Linear+ReLU hidden layers, the last one sigmoid (gh0 ReLU 8000, h1 sigmoid 8000 in the
   file) -> reshape (80, 10, 10) -> 5x5 transposed convolution, stride 3, no padding -> (C, 32, 32) with an
   untied bias (one per output pixel, as the file's tied_b: 0) -> sigmoid (our data is in [0, 1]; the authors
   used a linear output on contrast-normalised data) -> flattened to (B, C*32*32) like every generator here.
D: x (B, C*32*32) -> (C, 32, 32) -> three maxout convolution layers (32, 32, 192 channels of 2 pieces; kernels
   8, 8, 5; padding 4, 3, 3; max-pooling 4/2, 4/2, 2/2 with ceil rounding as cuda-convnet) -> maxout
   d_hidden layers (500 units of d_pieces = 5) -> one logit. Dropout on every layer's input with keep
   d_input_keep (0.8) on the data and d_hidden_keep (0.5) elsewhere, inputs scaled by 1/keep, as in the file.
Init as pylearn2's irange: weights U(-range, range) (g_init_range 0.05, d_init_range 0.005), biases 0, and
G's output bias the logit of the per-pixel training mean when g_bias_from_data.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import TrainConfig
from models.config_data import CONV_G_CHANNELS, CONV_G_GRID, CONV_KERNEL, CONV_SIDE, CONV_STRIDE, check_conv_shape
from models.nets.common import derived_generator, dropout, init_uniform, logit_of_mean, projection, with_class

# (channels, pieces, kernel, padding, pool, pool stride) of D's maxout convolution layers (dh0, h1, h2).
CONV_LAYERS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (32, 2, 8, 4, 4, 2),
    (32, 2, 8, 3, 4, 2),
    (192, 2, 5, 3, 2, 2),
)


def _shape_for(output_dim: int) -> tuple[int, int, int]:
    shape = (output_dim // (CONV_SIDE * CONV_SIDE), CONV_SIDE, CONV_SIDE)
    problem = check_conv_shape(shape) if shape[0] * CONV_SIDE * CONV_SIDE == output_dim else \
        f"the conv architecture needs C x {CONV_SIDE} x {CONV_SIDE} images, not {output_dim} values"
    if problem:
        raise ValueError(problem)
    return shape


class ConvGenerator(nn.Module):
    """z (B, latent) -> x (B, C*32*32)."""

    def __init__(self, config: TrainConfig, output_dim: int) -> None:
        super().__init__()
        self.image_shape = _shape_for(output_dim)
        self.num_classes = config.num_classes
        self.class_scale = config.g_class_scale
        dims = (config.latent_dim + self.num_classes, *config.g_hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.deconv = nn.ConvTranspose2d(CONV_G_CHANNELS, self.image_shape[0], CONV_KERNEL, stride=CONV_STRIDE,
                                         bias=False)
        self.bias = nn.Parameter(torch.zeros(self.image_shape))  # untied: one per output pixel
        self.sigmoid_output = config.g_output == "sigmoid"
        self.latent_dim = config.latent_dim
        self.output_dim = output_dim

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        h = with_class(z, c, self.num_classes, self.class_scale)     # (B, latent [+ classes])
        for i, layer in enumerate(self.layers):
            h = layer(h)
            h = torch.sigmoid(h) if i == len(self.layers) - 1 else F.relu(h)
        h = h.view(-1, CONV_G_CHANNELS, CONV_G_GRID, CONV_G_GRID)    # (B, 80, 10, 10)
        x = self.deconv(h) + self.bias                               # (B, C, 32, 32)
        x = torch.sigmoid(x) if self.sigmoid_output else x
        return x.flatten(1)                                          # (B, C*32*32)


class ConvDiscriminator(nn.Module):
    """x (B, C*32*32) -> logit (B, 1) of "x is data"."""

    def __init__(self, config: TrainConfig, input_dim: int) -> None:
        super().__init__()
        self.image_shape = _shape_for(input_dim)
        convs, pools, channels = [], [], self.image_shape[0]
        for out, pieces, kernel, pad, pool, stride in CONV_LAYERS:
            convs.append(nn.Conv2d(channels, out * pieces, kernel, padding=pad))
            pools.append((pieces, pool, stride))
            channels = out
        self.convs = nn.ModuleList(convs)
        self.pools = pools
        # Keep probability of each layer's input: the data, then each conv and maxout layer's output.
        n_layers = len(CONV_LAYERS) + len(config.d_hidden) + 1
        self.keeps = (config.d_input_keep,) + (config.d_hidden_keep,) * (n_layers - 1)
        with torch.no_grad():
            flat = self._features(torch.zeros(1, *self.image_shape)).shape[1]   # 192 * 5 * 5 for 32 x 32
        dims = (flat, *config.d_hidden)
        self.pieces = config.d_pieces
        self.hidden = nn.ModuleList(nn.Linear(a, b * self.pieces) for a, b in itertools.pairwise(dims))
        self.out = nn.Linear(dims[-1], 1)
        # Conditional: c enters as a projection onto the last hidden layer (not as extra input channels).
        self.num_classes = config.num_classes
        self.project = nn.Linear(self.num_classes, dims[-1], bias=False) if self.num_classes else None
        self.input_dim = input_dim

    @property
    def parametrized(self) -> list[nn.Module]:
        return [*self.convs, *self.hidden, self.out, *([self.project] if self.project is not None else [])]

    def _features(self, x: Tensor, rng: torch.Generator | None = None) -> Tensor:
        a = x
        for i, (conv, (pieces, pool, stride)) in enumerate(zip(self.convs, self.pools)):
            pre = conv(dropout(a, self.keeps[i], rng))                           # (B, out*pieces, H, W)
            b, _, h, w = pre.shape
            a = pre.view(b, -1, pieces, h, w).amax(2)                            # maxout over pieces
            a = F.max_pool2d(a, pool, stride, ceil_mode=True)                    # cuda-convnet rounding
        return a.flatten(1)

    def forward(self, x: Tensor, rng: torch.Generator | None = None, c: Tensor | None = None) -> Tensor:
        """Logits (B, 1); with `rng`, fresh dropout masks drawn from it (training), else none (test time).
        c: (B, classes) one-hot, required when conditional."""
        a = self._features(x.view(-1, *self.image_shape), rng)
        base = len(self.convs)
        for j, layer in enumerate(self.hidden):
            pre = layer(dropout(a, self.keeps[base + j], rng))
            a = pre.view(pre.shape[0], self.pieces, -1).amax(1)                  # (B, units)
        a = dropout(a, self.keeps[-1], rng)
        return self.out(a) + projection(self.project, c, a)


@torch.no_grad()
def build_conv_generator(config: TrainConfig, data_mean: np.ndarray | None,
                         output_dim: int | None = None) -> ConvGenerator:
    """G with the authors' init: weights U(-g_init_range, g_init_range), biases 0, the untied output bias the
    logit of the per-pixel training mean (when g_bias_from_data and the output is a sigmoid)."""
    dim = len(data_mean) if data_mean is not None else output_dim or 3 * CONV_SIDE * CONV_SIDE
    g = ConvGenerator(config, dim)
    init_uniform([*g.layers, g.deconv], config.g_init_range, derived_generator(config.seed, 1))
    g.bias.zero_()
    if data_mean is not None and config.g_bias_from_data and config.g_output == "sigmoid":
        g.bias.copy_(logit_of_mean(data_mean, g.image_shape))
    return g


@torch.no_grad()
def build_conv_discriminator(config: TrainConfig, input_dim: int) -> ConvDiscriminator:
    """D with the authors' init: weights U(-d_init_range, d_init_range), biases 0."""
    d = ConvDiscriminator(config, input_dim)
    init_uniform(d.parametrized, config.d_init_range, derived_generator(config.seed, 2))
    return d


__all__ = ["CONV_LAYERS", "ConvDiscriminator", "ConvGenerator", "build_conv_discriminator",
           "build_conv_generator"]
