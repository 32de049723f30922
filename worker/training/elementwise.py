"""D's elementwise steps for the fused passes (worker/training/passes.py): dropout, maxout and their gradients,
and the losses' heads (D's logits to the loss statistics and the gradient w.r.t. the logits).

Two implementations of the same maths, chosen per DiscriminatorPass by `elementwise_ops`:
  - TorchOps: torch ops, any device and dtype (the GPU path; the CPU path where no C compiler is found).
  - NativeOps: the C kernels of kernels.c (CPU, fp32 and bf16), built at first use with the machine's C compiler
    (worker/training/native.py). Each step is one pass with no temporaries: on the paper's nets torch's version
    of these steps costs several times the kernels' time, mostly memory traffic and per-op overhead around the
    products (`ganserve bench train` reports `it_per_s_torch_ops` beside `it_per_s`).

Dropout masks: entry e of a layer's (r, n) input is kept when a random 16-bit word is below round(keep·2^16)
(P(keep) within 2^-17 of keep; exactly keep where keep·2^16 is whole). TorchOps draws its words with the run's
torch.Generator (8-bit words where keep·256 is whole); NativeOps draws one 64-bit key per D pass from that same
generator and takes the words from SplitMix64 streams seeded by it, one per layer. Both are pure functions of the
run's generator state, so a resumed run draws the same masks on the same implementation.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from worker.training.native import library, status

_MASK64 = (1 << 64) - 1
_STREAM = (1 << 32) * 0x9E3779B97F4A7C15 & _MASK64      # seed offset between layers' streams: 2^32 words apart


class TorchOps:
    """The steps as torch ops. Masks are 0/1 tensors in the compute dtype: float * bool is a slow path."""

    def __init__(self, rows: int, ins: Sequence[int], keeps: Sequence[float], dtype: torch.dtype,
                 device: torch.device) -> None:
        self.keeps = keeps
        self.rules = [_mask_rule(k) for k in keeps]
        self.masks = [torch.zeros(rows, n, dtype=dtype, device=device) if k < 1.0 else None
                      for n, k in zip(ins, keeps, strict=True)]
        # 64 random bits per word; no redraws, so no data-dependent work (nor a device sync on a GPU).
        self.words = [torch.zeros(-(-rows * n * bits // 64), dtype=torch.int64, device=device)
                      for n, (bits, _) in zip(ins, self.rules, strict=True)]
        self._heads: dict[int, tuple[Tensor, Tensor, Tensor]] = {}              # d_head's constants, per m

    def begin(self, gen: torch.Generator) -> None:
        """A new D pass: nothing to draw ahead (each mask draws its own words)."""

    def draw_mask(self, i: int, r: int, gen: torch.Generator) -> Tensor:
        """(r, n_i) fresh 0/1 keep mask of layer i's input."""
        mask = self.masks[i]
        assert mask is not None
        n, (bits, t) = mask.shape[1], self.rules[i]
        words = self.words[i][: -(-r * n * bits // 64)]
        words.random_(-(2**63), None, generator=gen)                               # uniform over all 64 bits
        u = words.view(torch.int8 if bits == 8 else torch.int16)[: r * n].view(r, n)
        return torch.lt(u, t, out=mask[:r])

    def dropout(self, i: int, src: Tensor, dst: Tensor, gen: torch.Generator) -> None:
        """dst (r, n_i) = src with a fresh mask (unscaled: the product's alpha scales)."""
        torch.mul(src, self.draw_mask(i, src.shape[0], gen), out=dst)

    def maxout(self, pre3: Tensor, h: Tensor) -> Tensor:
        """h (r, units) = max over pieces of pre3 (r, pieces, units)."""
        return torch.amax(pre3, 1, out=h)

    def maxout_grad(self, pre3: Tensor, h: Tensor, gin: Tensor, i: int, gpre3: Tensor) -> None:
        """gpre3 (r, pieces, units): gin (r, units), the gradient w.r.t. layer i's masked input, through layer i's
        dropout and the maxout below it (to every piece equal to the maximum: ties, ~never in fp32, to each)."""
        self.mask_grad(i, gin)
        torch.ge(pre3, h.unsqueeze(1), out=gpre3)
        gpre3.mul_(gin.unsqueeze(1))

    def mask_grad(self, i: int, gin: Tensor) -> None:
        """gin (r, n_i), the gradient w.r.t. layer i's masked input, through its dropout, in place."""
        mask = self.masks[i]
        if mask is not None:
            gin.mul_(mask[: gin.shape[0]])

    def d_head(self, logits: Tensor, stats: Tensor) -> Tensor:
        """(2m, 1) fp32 gradient of D's loss ½[mean softplus(-l_real) + mean softplus(l_fake)] = (p - y) / (2m)
        w.r.t. its fp32 logits (2m, 1), m real rows then m fake rows (-log D = softplus(-l), -log(1 - D) =
        softplus(l): no overflow). Adds [[mean -log D(x), mean D(x)], [mean -log(1 - D(G(z))), mean D(G(z))]]
        to stats (2, 2)."""
        m = logits.shape[0] // 2
        if m not in self._heads:
            sign = torch.ones(2 * m, 1, device=logits.device)
            sign[:m] = -1.0
            target = torch.zeros(2 * m, 1, device=logits.device)
            target[:m] = -0.5 / m                                        # (p - y) / (2m) = p / (2m) + target
            halves = torch.zeros(2, 2 * m, device=logits.device)          # row means of each half, one product
            halves[0, :m] = halves[1, m:] = 1.0 / m
            self._heads[m] = (sign, target, halves)
        sign, target, halves = self._heads[m]
        p = torch.sigmoid(logits)
        stats.addmm_(halves, torch.cat([F.softplus(logits * sign), p], 1))
        return torch.add(target, p, alpha=0.5 / m)

    def g_head(self, logits: Tensor, stats: Tensor, non_saturating: bool) -> Tensor:
        """(m, 1) fp32 gradient of G's loss w.r.t. D's fp32 logits (m, 1) of its samples: non-saturating G
        minimises mean -log D(G(z)), else mean log(1 - D(G(z))); adds that loss to stats (1,)."""
        p, m = torch.sigmoid(logits), logits.shape[0]
        if non_saturating:
            stats.add_(F.softplus(-logits).mean())
            return (p - 1.0) / m
        stats.sub_(F.softplus(logits).mean())
        return -p / m


class NativeOps:
    """The steps as kernels.c's kernels (CPU; fp32 or bf16). Masks are uint8 0/1 (rows, n_i)."""

    def __init__(self, lib: ctypes.CDLL, rows: int, ins: Sequence[int], keeps: Sequence[float], dtype: torch.dtype) -> None:
        suffix = "f32" if dtype == torch.float32 else "bf16"
        self._dropout, self._maxout = getattr(lib, f"dropout_{suffix}"), getattr(lib, f"maxout_{suffix}")
        self._maxout_grad, self._mask_grad = getattr(lib, f"maxout_grad_{suffix}"), getattr(lib, f"mask_grad_{suffix}")
        self.thresholds = [round(k * 2**16) for k in keeps]
        self.masks = [torch.zeros(rows, n, dtype=torch.uint8) if k < 1.0 else None
                      for n, k in zip(ins, keeps, strict=True)]
        self._key = torch.zeros(1, dtype=torch.int64)
        self._drops = any(m is not None for m in self.masks)
        self.seed = 0
        self._d_head, self._g_head = lib.d_head, lib.g_head
        self._dl_d, self._dl_g = torch.zeros(rows, 1), torch.zeros(rows, 1)         # the heads' outputs

    def begin(self, gen: torch.Generator) -> None:
        """A new D pass: one 64-bit key from the run's generator seeds every layer's mask stream (no draw
        without dropout: the run's stream is then the torch ops')."""
        if self._drops:
            self.seed = int(self._key.random_(-(2**63), None, generator=gen).item()) & _MASK64

    def _draw(self, i: int, src: Tensor | None, dst: Tensor | None, r: int) -> Tensor:
        mask = self.masks[i]
        assert mask is not None
        _fits(r, mask)
        seed = (self.seed + i * _STREAM) & _MASK64
        self._dropout(_ptr(src), _ld(src), _ptr(dst), _ld(dst), mask.data_ptr(), r, mask.shape[1], seed,
                      self.thresholds[i])
        return mask[:r]

    def draw_mask(self, i: int, r: int, gen: torch.Generator) -> Tensor:
        self.begin(gen)
        return self._draw(i, None, None, r)

    def dropout(self, i: int, src: Tensor, dst: Tensor, gen: torch.Generator) -> None:
        if src.dtype != dst.dtype or src.stride(1) != 1:          # the kernels read rows of the compute dtype
            src = src.to(dst.dtype).contiguous()
        self._draw(i, src, dst, src.shape[0])

    def maxout(self, pre3: Tensor, h: Tensor) -> Tensor:
        r, pieces, units = pre3.shape
        self._maxout(pre3.data_ptr(), pre3.stride(0), h.data_ptr(), h.stride(0), r, pieces, units)
        return h

    def maxout_grad(self, pre3: Tensor, h: Tensor, gin: Tensor, i: int, gpre3: Tensor) -> None:
        r, pieces, units = pre3.shape
        mask = self.masks[i]
        if mask is not None:
            _fits(r, mask)
        self._maxout_grad(pre3.data_ptr(), pre3.stride(0), gin.data_ptr(), gin.stride(0), _ptr(self.masks[i]),
                          gpre3.data_ptr(), gpre3.stride(0), r, pieces, units)

    def mask_grad(self, i: int, gin: Tensor) -> None:
        mask = self.masks[i]
        if mask is not None:
            self._mask_grad(gin.data_ptr(), gin.stride(0), mask.data_ptr(), _fits(gin.shape[0], mask), gin.shape[1])

    def d_head(self, logits: Tensor, stats: Tensor) -> Tensor:
        out = self._dl_d[: _fits(logits.shape[0], self._dl_d)]
        _check_fp32(logits, stats)
        self._d_head(logits.data_ptr(), logits.stride(0), logits.shape[0] // 2, out.data_ptr(), stats.data_ptr())
        return out

    def g_head(self, logits: Tensor, stats: Tensor, non_saturating: bool) -> Tensor:
        out = self._dl_g[: _fits(logits.shape[0], self._dl_g)]
        _check_fp32(logits, stats)
        self._g_head(logits.data_ptr(), logits.stride(0), logits.shape[0], int(non_saturating), out.data_ptr(),
                     stats.data_ptr())
        return out


Ops = TorchOps | NativeOps


def elementwise_ops(rows: int, ins: Sequence[int], keeps: Sequence[float], dtype: torch.dtype, device: torch.device,
                    native: bool | None = None) -> Ops:
    """The kernels for a D of layer inputs `ins` on up to `rows` rows: native where they run (CPU, fp32/bf16, a C
    compiler found) unless `native` is False or torch_ops_only() (worker/training/native.py) is in force; native=True requires them."""
    on_cpu = device.type == "cpu" and dtype in (torch.float32, torch.bfloat16)
    lib = library() if on_cpu and native is not False else None
    if native and lib is None:
        why = status() if on_cpu else f"{device.type} {dtype} (the kernels are for fp32/bf16 on the CPU)"
        raise RuntimeError(f"the native kernels do not run here: {why}")
    if lib is not None:
        return NativeOps(lib, rows, ins, keeps, dtype)
    return TorchOps(rows, ins, keeps, dtype, device)


def _fits(rows: int, buffer: Tensor) -> int:
    """rows, if the buffer has that many: the kernels write without bounds checks."""
    if rows > buffer.shape[0]:
        raise ValueError(f"{rows} rows for a buffer of {buffer.shape[0]}")
    return rows


def _check_fp32(*tensors: Tensor) -> None:
    if any(t.dtype != torch.float32 or t.device.type != "cpu" for t in tensors):
        raise ValueError("the loss heads take fp32 CPU tensors")


def _ptr(t: Tensor | None) -> int | None:
    return t.data_ptr() if t is not None else None


def _ld(t: Tensor | None) -> int:
    return t.stride(0) if t is not None else 0


def _mask_rule(keep: float) -> tuple[int, int]:
    """(bits, t): TorchOps keeps an entry when its uniform random `bits`-bit word u (as a signed integer) is < t.
    8 bits where keep * 256 is an integer (0.5: t = 128 - 128), so P(keep) = keep exactly; else 16 bits with
    P(keep) = round(keep * 2^16) / 2^16, within 2^-17 of keep (torch's own Bernoulli draws are float32)."""
    bits = 8 if abs(keep * 256 - round(keep * 256)) < 1e-9 else 16
    return bits, round(keep * 2**bits) - 2 ** (bits - 1)


__all__ = ["NativeOps", "Ops", "TorchOps", "elementwise_ops"]
