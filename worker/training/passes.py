"""Hand-written forward and backward passes of the MLP nets (models/nets/mlp.py), for the fused engine
(worker/training/fused.py).

`GeneratorPass` / `DiscriminatorPass` compute the same maths as the nn.Modules on preallocated buffers, and
only the products Algorithm 1 needs (no weight gradients in the step that does not update a net, no input
gradient into the data). Each weight gradient goes to a `Sink`, which can fuse the optimizer's update into the
matrix product (worker/training/optim.py). ganserve bench train measures what this buys over autograd.

D's elementwise steps (dropout, maxout and their gradients) are worker/training/elementwise.py's: C kernels on the
CPU, torch ops elsewhere. Its dropout masks follow their own rule (random 16-bit words against a threshold), several
times cheaper than Bernoulli draws; so for one seed the fused and the autograd engine (models.nets.common.dropout)
draw the same first minibatch and z, then other masks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.nets.mlp import Discriminator, Generator
from worker.training.elementwise import Ops, elementwise_ops

# sink(layer, g, a_aug, scale): the gradient of the layer's packed [W | b] is scale * g.T @ a_aug (a_aug: the
# layer input with its constant column, see _Pass). The passes call it once they no longer need the layer's
# weights, so it may update the layer in place (while the increment is still in cache).
Sink = Callable[[int, Tensor, Tensor, float], None]


ROW_ALIGN = 64  # bytes: rows of n + 1 numbers start on cache lines, or MKL's GEMM slows by up to a third


def padded(rows: int, cols: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A zeroed (rows, cols) view whose rows start every ROW_ALIGN bytes (cols + 1 columns would not)."""
    per_line = max(1, ROW_ALIGN // dtype.itemsize)
    stride = -(-cols // per_line) * per_line
    return torch.zeros(rows, stride, dtype=dtype, device=device)[:, :cols]


class _Pass:
    """Training layout of a net's Linear layers, for the hand-written passes.

    Each layer's [W | b] lives in one packed (out, in + 1) matrix P (the module's weight and bias become views
    of it), and each layer input is kept with one extra constant column c: then a_aug @ P.T = a @ W.T + c*b,
    so one product also adds the bias (no bias broadcast, no read of the output), and g.T @ a_aug gives
    [dW | c * db] in one product too. With alpha the dropout scale 1/keep, c = keep makes alpha * c = 1.
    """

    def __init__(self, linears: list[nn.Linear], dtype: torch.dtype) -> None:
        self.linears = linears
        self.packed: list[Tensor] = []
        for lin in linears:
            packed = padded(lin.out_features, lin.in_features + 1, lin.weight.dtype, lin.weight.device)
            packed[:, :-1] = lin.weight.detach()                                        # (out, in + 1)
            packed[:, -1] = lin.bias.detach()
            lin.weight.data, lin.bias.data = packed[:, :-1], packed[:, -1]
            self.packed.append(packed)
        self.dtype = dtype
        self.copies = dtype != self.packed[0].dtype
        self.w = [padded(p.shape[0], p.shape[1], dtype, p.device).copy_(p) if self.copies else p
                  for p in self.packed]                                           # compute-dtype [W | b]
        self.wt = [w.t() for w in self.w]                                         # (in + 1, out) views
        self.w_in = [w[:, :-1] for w in self.w]                                   # W without the bias

    def refresh(self) -> None:
        """Call after the parameters change: re-round the bf16 copies."""
        if self.copies:
            for w, p in zip(self.w, self.packed, strict=True):
                w.copy_(p)

    def release(self) -> None:
        """Give the module back contiguous, independent weight and bias tensors."""
        for lin in self.linears:
            lin.weight.data, lin.bias.data = lin.weight.data.clone(), lin.bias.data.clone()

    def buf(self, *shape: int, dtype: torch.dtype | None = None) -> Tensor:
        return torch.zeros(shape, dtype=dtype or self.dtype, device=self.packed[0].device)

    def augmented(self, rows: int, n: int, c: float) -> Tensor:
        """(rows, n + 1) layer-input buffer whose last column is the constant c."""
        a = padded(rows, n + 1, self.dtype, self.packed[0].device)
        a[:, n] = c
        return a


class GeneratorPass(_Pass):
    """G forward on `rows` fresh noise vectors, keeping the activations its backward needs."""

    def __init__(self, g: Generator, rows: int, dtype: torch.dtype) -> None:
        super().__init__(g.linears, dtype)
        self.sigmoid_output = g.sigmoid_output
        # inputs[i] (m, n_i + 1): z, then each hidden output, with a column of ones (no dropout in G).
        self.inputs = [self.augmented(rows, lin.in_features, 1.0) for lin in g.linears]
        self.z = self.inputs[0][:, :-1]                                           # (m, latent), a view
        self.hidden = [a[:, :-1] for a in self.inputs[1:]]                        # hidden outputs, views
        self.out = self.buf(rows, g.output_dim)                                   # (m, D)
        self.gin = [self.buf(rows, lin.in_features) for lin in g.linears[1:]]    # grads w.r.t. hidden outputs
        self.gout = self.buf(rows, g.output_dim)                                  # grad w.r.t. the pre-sigmoid
        self.x = self.out

    def forward(self, out: Tensor | None = None) -> Tensor:
        """x = G(self.z) (m, D), written into `out` if given (e.g. the fake rows of D's input buffer)."""
        last = len(self.w) - 1
        for i, wt in enumerate(self.wt):
            dst = (self.out if out is None else out) if i == last else self.hidden[i]
            torch.mm(self.inputs[i], wt, out=dst)                                 # (m, width_i), bias included
            if i < last:
                dst.relu_()
            elif self.sigmoid_output:
                dst.sigmoid_()
        self.x = dst
        return dst

    def backward(self, dx: Tensor, sink: Sink) -> None:
        """dx (m, D): gradient of the loss w.r.t. G's output. Weight grads of every layer go to `sink`;
        input grads only for the hidden layers (never into z)."""
        g = dx
        if self.sigmoid_output:                                                   # sigmoid' = x (1 - x)
            g = torch.ops.aten.sigmoid_backward.grad_input(dx, self.x, grad_input=self.gout)
        for i in range(len(self.w) - 1, -1, -1):
            if i > 0:
                gin = torch.mm(g, self.w_in[i], out=self.gin[i - 1])             # (m, width_{i-1})
            sink(i, g, self.inputs[i], 1.0)                                       # layer i may change now
            if i == 0:
                return
            torch.ops.aten.threshold_backward.grad_input(gin, self.hidden[i - 1], 0.0, grad_input=gin)
            g = gin                                                               # through ReLU'


class DiscriminatorPass(_Pass):
    """D forward with fresh dropout masks on up to `rows` inputs, and its backward. native: the elementwise
    steps' implementation (worker/training/elementwise.py; None: the C kernels where they run)."""

    def __init__(self, d: Discriminator, rows: int, dtype: torch.dtype, generator: torch.Generator,
                 native: bool | None = None) -> None:
        super().__init__(d.linears, dtype)
        self.gen = generator
        self.pieces, self.units, self.keeps = d.pieces, d.units, d.keeps
        ins = [lin.in_features for lin in d.linears]
        # inputs[i] (rows, n_i + 1): layer i's masked input (unscaled) and the constant column keep_i; the
        # product's alpha = 1/keep_i scales the kept inputs and leaves the bias as it is.
        self.inputs = [self.augmented(rows, n, k) for n, k in zip(ins, self.keeps, strict=True)]
        self.ops: Ops = elementwise_ops(rows, ins, self.keeps, dtype, self.packed[0].device, native)
        self.pre = [self.buf(rows, lin.out_features) for lin in d.linears[:-1]]  # (rows, pieces*units)
        self.h = [self.buf(rows, u) for u in self.units]                          # maxout outputs
        self.gpre = [self.buf(rows, lin.out_features) for lin in d.linears[:-1]]
        self.gin = [self.buf(rows, n) for n in ins]
        self.logits = self.buf(rows, 1)
        self.rows = 0
        self._views: dict[int, list[_LayerRows]] = {}

    @property
    def masks(self) -> list[Tensor | None]:
        """Each layer's 0/1 input mask (rows, n_i) of the last pass (None: no dropout), first r rows used."""
        return self.ops.masks

    def views(self, r: int) -> list[_LayerRows]:
        """Per-layer views of the buffers for r rows, made once (slicing costs Python time every step)."""
        if r not in self._views:
            layers = []
            for i in range(len(self.linears)):
                hidden = i < len(self.linears) - 1
                pre = self.pre[i][:r] if hidden else self.logits[:r]
                layers.append(_LayerRows(
                    a=self.inputs[i][:r], a_in=self.inputs[i][:r, :-1], pre=pre, gin=self.gin[i][:r],
                    pre3=pre.view(r, self.pieces, -1) if hidden else pre,
                    h=self.h[i][:r] if hidden else pre, gpre=self.gpre[i][:r] if hidden else pre,
                    gpre3=self.gpre[i][:r].view(r, self.pieces, -1) if hidden else pre))
            self._views[r] = layers
        return self._views[r]

    def draw_mask(self, i: int, r: int) -> Tensor:
        """(r, n_i) 0/1 keep mask of layer i's input, Bernoulli(keep_i), from the run's generator."""
        return self.ops.draw_mask(i, r, self.gen)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (r, 1) of the r inputs x (r, D) with fresh dropout masks; x may be self.inputs[0][:r, :-1]."""
        r = self.rows = x.shape[0]
        src = x
        last = len(self.w) - 1
        self.ops.begin(self.gen)
        for i, v in enumerate(self.views(r)):
            if self.keeps[i] < 1.0:                                               # dropout (unscaled)
                self.ops.dropout(i, src, v.a_in, self.gen)
            elif src.data_ptr() != v.a_in.data_ptr() or src.stride() != v.a_in.stride():
                v.a_in.copy_(src)
            # (r, pieces*units) or (r, 1) = alpha * a_aug @ [W | b].T, bias included (alpha * keep = 1)
            v.pre.addmm_(v.a, self.wt[i], beta=0.0, alpha=1.0 / self.keeps[i])
            if i == last:
                return v.pre
            src = self.ops.maxout(v.pre3, v.h)                                    # maxout: (r, units)
        raise AssertionError("unreachable")

    def backward(self, dlogits: Tensor, sink: Sink | None, input_grad: bool) -> Tensor | None:
        """dlogits (r, 1). Weight grads to `sink` (None: skip them, as in the G-step); returns the gradient
        w.r.t. D's input x (r, D) if input_grad (the G-step), else stops before the first layer's input."""
        views = self.views(self.rows)
        g = dlogits
        for i in range(len(self.w) - 1, -1, -1):
            v, alpha = views[i], 1.0 / self.keeps[i]
            last = i == 0 and not input_grad
            if not last:                                                          # (r, n_i) = alpha g @ W_i
                v.gin.addmm_(g, self.w_in[i], beta=0.0, alpha=alpha)
            if sink is not None:
                sink(i, g, v.a, alpha)                                            # layer i may change now
            if last:
                return None
            if i == 0:
                self.ops.mask_grad(0, v.gin)                                      # through the input dropout
                return v.gin
            # Through layer i's dropout and the maxout below: to the winning piece (ties, ~never in fp32: to
            # each tied piece).
            below = views[i - 1]
            self.ops.maxout_grad(below.pre3, below.h, v.gin, i, below.gpre3)
            g = below.gpre
        return None


@dataclass
class _LayerRows:
    """Views of one D layer's buffers for a given number of rows."""

    a: Tensor               # (r, n + 1) layer input with its constant column
    a_in: Tensor            # (r, n) the input part
    pre: Tensor             # (r, out) pre-activations (the logits for the last layer)
    pre3: Tensor            # (r, pieces, units) view of pre
    h: Tensor               # (r, units) maxout output
    gin: Tensor             # (r, n) gradient w.r.t. the (masked) input
    gpre: Tensor            # (r, out) gradient w.r.t. pre
    gpre3: Tensor           # (r, pieces, units) view of gpre


__all__ = ["DiscriminatorPass", "GeneratorPass", "Sink", "padded"]
