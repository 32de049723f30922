"""The networks of Goodfellow et al. (2014): a ReLU/sigmoid MLP generator and a maxout discriminator.

Two ways to run them:
- the nn.Module forward (autograd, export, sampling), and
- `GeneratorPass` / `DiscriminatorPass`: the same maths as hand-written forward and backward passes on
  preallocated buffers, used by the training loop. They compute only the products Algorithm 1 needs (no
  weight gradients in the step that does not update a net, no input gradient into the data) and hand
  each weight gradient to a `Sink`, which can fuse the momentum update into the matrix product.

Maxout layout: a hidden D layer is one Linear to pieces*units outputs ordered piece-major (row p*units + j
is piece p of unit j), so the max over pieces is a max over `pieces` contiguous (B, units) slices. It is
pylearn2's parameterization up to a fixed permutation of the rows (same shapes, same i.i.d. init).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import TrainConfig

# Flattened data dimension of each dataset, for a generator built without the data.
DATA_DIMS: dict[str, int] = {"mnist": 784, "fashion-mnist": 784, "cifar10": 3072, "tfd": 2304, "toy-1d": 1,
                             "toy-ring": 2, "toy-grid": 2}

# sink(layer, g, a, scale): the weight gradient of `layer` is scale * g.T @ a, its bias gradient g.sum(0).
# The passes call it once they no longer need the layer's weights, so it may update the layer in place
# (the momentum update then touches each weight matrix while it is still in cache).
Sink = Callable[[int, Tensor, Tensor, float], None]


class Generator(nn.Module):
    """z (B, latent) -> x (B, D): Linear+ReLU hidden layers, then Linear (+ sigmoid for pixels)."""

    def __init__(self, config: TrainConfig, output_dim: int) -> None:
        super().__init__()
        dims = (config.latent_dim, *config.g_hidden, output_dim)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(dims))
        self.sigmoid_output = config.g_output == "sigmoid"
        self.latent_dim = config.latent_dim
        self.output_dim = output_dim

    @property
    def linears(self) -> list[nn.Linear]:
        return list(self.layers)  # type: ignore[arg-type]

    def forward(self, z: Tensor) -> Tensor:
        h = z                                                    # (B, latent)
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))                                 # (B, hidden)
        x = self.layers[-1](h)                                   # (B, D)
        return torch.sigmoid(x) if self.sigmoid_output else x


class Discriminator(nn.Module):
    """x (B, D) -> logit (B, 1) of "x is data": maxout hidden layers, then one sigmoid unit (as a logit)."""

    def __init__(self, config: TrainConfig, input_dim: int) -> None:
        super().__init__()
        dims = (input_dim, *config.d_hidden)
        self.pieces = config.d_pieces
        self.units = tuple(config.d_hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b * self.pieces) for a, b in pairwise(dims))
        self.out = nn.Linear(dims[-1], 1)
        # Keep probability of each layer's input (dropout on the data, then on each maxout output).
        self.keeps = (config.d_input_keep,) + (config.d_hidden_keep,) * len(config.d_hidden)
        self.input_dim = input_dim

    @property
    def linears(self) -> list[nn.Linear]:
        return [*self.hidden, self.out]  # type: ignore[list-item]

    def forward(self, x: Tensor, masks: list[Tensor] | None = None) -> Tensor:
        """Logits (B, 1). `masks[i]` (B, n_i) 0/1 drops layer i's input; kept inputs are scaled by 1/keep.
        Without masks: no dropout (the test-time net, as pylearn2's weight scaling gives)."""
        a = x                                                    # (B, D)
        for i, layer in enumerate(self.linears):
            if masks is not None and masks[i] is not None:
                a = a * masks[i] * (1.0 / self.keeps[i])         # dropout on this layer's input
            if layer is self.out:
                return layer(a)                                  # (B, 1)
            pre = layer(a).view(a.shape[0], self.pieces, -1)     # (B, pieces, units)
            a = pre.amax(1)                                      # (B, units)
        raise AssertionError("unreachable")


def _data_dim(dataset: str) -> int:
    if dataset in DATA_DIMS:
        return DATA_DIMS[dataset]
    from models import datasets  # stored / newer datasets

    return datasets.dim_of(dataset)


def derived_generator(seed: int, tag: int) -> torch.Generator:
    """A CPU generator derived from the run's seed: tag 1 G's init, 2 D's init, 3 the fixed snapshot noise."""
    return torch.Generator().manual_seed((seed * 0x9E3779B97F4A7C15 + tag) % (2**63))


@torch.no_grad()
def build_generator(config: TrainConfig, data_mean: np.ndarray | None, output_dim: int | None = None) -> Generator:
    """G with the paper's init: weights U(-g_init_range, g_init_range), hidden biases 0, output bias the logit
    of the per-pixel training mean clipped to [1e-7, 1 - 1e-7] (pylearn2's init_sigmoid_bias_from_marginals)."""
    if config.architecture == "conv":  # Figure 2d's nets (issue 8), trained by worker/train_conv.py
        from models.conv_nets import build_conv_generator
        return build_conv_generator(config, data_mean, output_dim)  # type: ignore[return-value]
    dim = len(data_mean) if data_mean is not None else output_dim or _data_dim(config.dataset)
    g = Generator(config, dim)
    rng = derived_generator(config.seed, 1)
    for layer in g.linears:
        layer.weight.uniform_(-config.g_init_range, config.g_init_range, generator=rng)
        layer.bias.zero_()
    if data_mean is not None and config.g_bias_from_data and config.g_output == "sigmoid":
        mean = np.clip(np.asarray(data_mean, dtype=np.float64).reshape(-1), 1e-7, 1 - 1e-7)
        g.linears[-1].bias.copy_(torch.from_numpy(np.log(mean / (1.0 - mean))))
    return g


@torch.no_grad()
def build_discriminator(config: TrainConfig, input_dim: int) -> Discriminator:
    """D with the paper's init: weights U(-d_init_range, d_init_range), biases 0."""
    if config.architecture == "conv":
        from models.conv_nets import build_conv_discriminator
        return build_conv_discriminator(config, input_dim)  # type: ignore[return-value]
    d = Discriminator(config, input_dim)
    rng = derived_generator(config.seed, 2)
    for layer in d.linears:
        layer.weight.uniform_(-config.d_init_range, config.d_init_range, generator=rng)
        layer.bias.zero_()
    return d


class _Pass:
    """Compute-dtype views of a net's weights: the fp32 parameters themselves, or bf16 copies (autocast)."""

    def __init__(self, linears: list[nn.Linear], dtype: torch.dtype) -> None:
        self.linears = linears
        self.dtype = dtype
        same = dtype == linears[0].weight.dtype
        self.w = [lin.weight.detach() if same else lin.weight.detach().to(dtype) for lin in linears]
        self.b = [lin.bias.detach() if same else lin.bias.detach().to(dtype) for lin in linears]
        self.copies = not same

    def refresh(self) -> None:
        """Call after the parameters change: re-round the bf16 copies."""
        if self.copies:
            for lin, w, b in zip(self.linears, self.w, self.b):
                w.copy_(lin.weight)
                b.copy_(lin.bias)

    def buf(self, *shape: int, dtype: torch.dtype | None = None) -> Tensor:
        return torch.zeros(shape, dtype=dtype or self.dtype, device=self.w[0].device)


class GeneratorPass(_Pass):
    """G forward on `rows` fresh noise vectors, keeping the activations its backward needs."""

    def __init__(self, g: Generator, rows: int, dtype: torch.dtype) -> None:
        super().__init__(g.linears, dtype)
        self.sigmoid_output = g.sigmoid_output
        self.z = self.buf(rows, g.latent_dim)                                    # (m, latent)
        self.h = [self.buf(rows, lin.out_features) for lin in g.linears]        # outputs of each layer
        self.gin = [self.buf(rows, lin.in_features) for lin in g.linears[1:]]   # grads w.r.t. hidden outputs
        self.gout = self.buf(rows, g.output_dim)                                 # grad w.r.t. the pre-sigmoid

    def forward(self, out: Tensor | None = None) -> Tensor:
        """x = G(self.z) (m, D), written into `out` if given (e.g. the fake half of D's input buffer)."""
        a = self.z
        last = len(self.w) - 1
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            dst = out if (i == last and out is not None) else self.h[i]
            torch.addmm(b, a, w.t(), out=dst)                                    # (m, width_i)
            if i < last:
                dst.relu_()
            elif self.sigmoid_output:
                dst.sigmoid_()
            a = dst
        self.x = a
        return a

    def backward(self, dx: Tensor, sink: Sink) -> None:
        """dx (m, D): gradient of the loss w.r.t. G's output. Weight grads of every layer go to `sink`;
        input grads only for the hidden layers (never into z)."""
        g = dx
        if self.sigmoid_output:                                                  # sigmoid' = x (1 - x)
            g = torch.ops.aten.sigmoid_backward.grad_input(dx, self.x, grad_input=self.gout)
        for i in range(len(self.w) - 1, -1, -1):
            a = self.z if i == 0 else self.h[i - 1]                              # the layer's input
            if i > 0:
                gin = torch.mm(g, self.w[i], out=self.gin[i - 1])                # (m, width_{i-1})
            sink(i, g, a, 1.0)                                                   # layer i may change now
            if i == 0:
                return
            torch.ops.aten.threshold_backward.grad_input(gin, self.h[i - 1], 0.0, grad_input=gin)  # ReLU'
            g = gin


class DiscriminatorPass(_Pass):
    """D forward with fresh dropout masks on up to `rows` inputs, and its backward."""

    def __init__(self, d: Discriminator, rows: int, dtype: torch.dtype, generator: torch.Generator) -> None:
        super().__init__(d.linears, dtype)
        self.gen = generator
        self.pieces, self.units, self.keeps = d.pieces, d.units, d.keeps
        ins = [lin.in_features for lin in d.linears]
        self.inputs = [self.buf(rows, n) for n in ins]                # masked inputs of each layer (unscaled)
        self.masks = [self.buf(rows, n) if k < 1.0 else None for n, k in zip(ins, self.keeps)]
        # Dropout draws: keep entry ⇔ u < t for u uniform random bits. A keep that is a multiple of 1/256
        # (0.5, 0.75, ...) is exact with 8 bits per entry (u uint8, t = keep * 256); any other keep (0.8)
        # uses 32 bits (u int32, t = keep * 2^32 - 2^31: P = keep to within 2^-32).
        self.bits = [8 if (k * 256).is_integer() else 32 for k in self.keeps]
        self.thresholds = [int(k * 256) if b == 8 else min(round(k * 2**32) - 2**31, 2**31 - 1)
                           for k, b in zip(self.keeps, self.bits)]
        self.words = [self.buf(-(-rows * n * b // 64), dtype=torch.int64)     # 64 random bits each
                      for n, b in zip(ins, self.bits)]
        self.pre = [self.buf(rows, lin.out_features) for lin in d.linears[:-1]]      # (rows, pieces*units)
        self.h = [self.buf(rows, u) for u in self.units]                         # maxout outputs
        self.gpre = [self.buf(rows, lin.out_features) for lin in d.linears[:-1]]
        self.gin = [self.buf(rows, n) for n in ins]
        self.logits = self.buf(rows, 1)
        self.used: list[Tensor] = []

    def draw_mask(self, i: int, r: int) -> Tensor:
        """(r, n_i) 0/1 keep mask of layer i's input, Bernoulli(keep_i), from the run's generator."""
        n, bits = self.inputs[i].shape[1], self.bits[i]
        words = self.words[i][: -(-r * n * bits // 64)]
        words.random_(-(2**63), None, generator=self.gen)                        # uniform over all 64 bits
        u = words.view(torch.uint8 if bits == 8 else torch.int32)[: r * n].view(r, n)
        mask = self.masks[i]
        assert mask is not None
        return torch.lt(u, self.thresholds[i], out=mask[:r])

    def forward(self, x: Tensor) -> Tensor:
        """Logits (r, 1) of the r inputs x (r, D) with fresh dropout masks; x may be self.inputs[0][:r]."""
        r = x.shape[0]
        src = x
        self.used = []
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            a, scale = src, 1.0
            if self.masks[i] is not None:
                a = torch.mul(src, self.draw_mask(i, r), out=self.inputs[i][:r])  # dropout; 1/keep goes
                scale = 1.0 / self.keeps[i]                                       # into the product's alpha
            self.used.append(a)
            if i == len(self.w) - 1:
                return torch.addmm(b, a, w.t(), alpha=scale, out=self.logits[:r])   # (r, 1)
            pre = torch.addmm(b, a, w.t(), alpha=scale, out=self.pre[i][:r])       # (r, pieces*units)
            src = torch.amax(pre.view(r, self.pieces, -1), 1, out=self.h[i][:r])  # (r, units)
        raise AssertionError("unreachable")

    def backward(self, dlogits: Tensor, sink: Sink | None, input_grad: bool) -> Tensor | None:
        """dlogits (r, 1). Weight grads to `sink` (None: skip them, as in the G-step); returns the gradient
        w.r.t. D's input x (r, D) if input_grad (the G-step), else stops before the first layer's input."""
        r = dlogits.shape[0]
        g = dlogits
        for i in range(len(self.w) - 1, -1, -1):
            scale = 1.0 / self.keeps[i] if self.masks[i] is not None else 1.0
            last = i == 0 and not input_grad
            if not last:                                                         # (r, n_i) = g @ W_i
                gin = self.gin[i][:r].addmm_(g, self.w[i], beta=0.0, alpha=scale)  # in place: no copy
            if sink is not None:
                sink(i, g, self.used[i], scale)                                  # layer i may change now
            if last:
                return None
            mask = self.masks[i]
            if mask is not None:
                gin.mul_(mask[:r])
            if i == 0:
                return gin
            # Maxout: the gradient goes to the winning piece (ties, ~never in fp32: to each tied piece).
            gpre = self.gpre[i - 1][:r].view(r, self.pieces, -1)                 # (r, pieces, units)
            torch.ge(self.pre[i - 1][:r].view(r, self.pieces, -1), self.h[i - 1][:r].unsqueeze(1), out=gpre)
            gpre.mul_(gin.unsqueeze(1))
            g = self.gpre[i - 1][:r]
        return None


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def noise(shape: tuple[int, ...], scale: float, generator: torch.Generator, device: torch.device | str = "cpu",
          dtype: torch.dtype = torch.float32) -> Tensor:
    """z ~ U[-scale, scale]^shape (scale sqrt(3): unit variance)."""
    return torch.empty(shape, dtype=dtype, device=device).uniform_(-scale, scale, generator=generator)


__all__ = [
    "DATA_DIMS",
    "Discriminator",
    "DiscriminatorPass",
    "Generator",
    "GeneratorPass",
    "Sink",
    "build_discriminator",
    "build_generator",
    "derived_generator",
    "noise",
    "parameter_count",
]
