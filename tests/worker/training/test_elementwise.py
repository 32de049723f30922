"""D's elementwise steps (worker/training/elementwise.py): the C kernels against the torch ops, exactly, and the
fallback where no C compiler is found."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from worker.training import native
from worker.training.elementwise import NativeOps, TorchOps, elementwise_ops
from worker.training.passes import padded

CPU = torch.device("cpu")
ROWS, PIECES, UNITS, N_IN = 37, 5, 23, 45          # odd sizes: rows do not start on 4-entry words


def _pair(dtype: torch.dtype) -> tuple[NativeOps, TorchOps]:
    ins, keeps = [N_IN, UNITS], [0.8, 0.5]
    native = elementwise_ops(ROWS, ins, keeps, dtype, CPU, native=True)
    torch_ops = elementwise_ops(ROWS, ins, keeps, dtype, CPU, native=False)
    assert isinstance(native, NativeOps) and isinstance(torch_ops, TorchOps)
    return native, torch_ops


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_native_kernels_compute_what_the_torch_ops_compute(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    native, ref = _pair(dtype)
    native.begin(gen)
    # Pre-activations on a coarse grid, so that pieces tie often (each tied piece gets the gradient).
    pre = padded(ROWS, PIECES * UNITS, dtype, CPU)
    pre.copy_(torch.randint(-3, 4, (ROWS, PIECES * UNITS), generator=gen).to(dtype) / 2)
    pre3 = pre.view(ROWS, PIECES, UNITS) if pre.is_contiguous() else pre.as_strided(
        (ROWS, PIECES, UNITS), (pre.stride(0), UNITS, 1))
    h_native, h_ref = padded(ROWS, UNITS, dtype, CPU), padded(ROWS, UNITS, dtype, CPU)
    assert torch.equal(native.maxout(pre3, h_native), ref.maxout(pre3, h_ref))

    # Dropout of h into a padded buffer: kept entries copied, dropped ones 0, the mask says which.
    dst = padded(ROWS, UNITS, dtype, CPU)
    native.dropout(1, h_native, dst, gen)
    mask = native.masks[1]
    assert mask is not None and mask.dtype == torch.uint8 and set(mask.unique().tolist()) == {0, 1}
    assert torch.equal(dst, h_native * mask.to(dtype))
    ref_mask = ref.masks[1]
    assert ref_mask is not None
    ref_mask.copy_(mask)                                            # the torch ops with the same mask from here on

    gin = torch.randn(ROWS, UNITS, generator=gen).to(dtype)
    gin_ref = gin.clone()
    gpre_native, gpre_ref = torch.empty(ROWS, PIECES, UNITS, dtype=dtype), torch.empty(ROWS, PIECES, UNITS, dtype=dtype)
    native.maxout_grad(pre3, h_native, gin, 1, gpre_native)
    ref.maxout_grad(pre3, h_ref, gin_ref, 1, gpre_ref)
    assert torch.equal(gpre_native, gpre_ref)
    assert int((pre3 == h_ref.unsqueeze(1)).sum()) > ROWS * UNITS   # ties were there

    # In-place dropout of the input layer, and its gradient.
    x = torch.rand(ROWS, N_IN, generator=gen).to(dtype)
    before = x.clone()
    native.dropout(0, x, x, gen)
    mask0 = native.masks[0]
    assert mask0 is not None
    assert torch.equal(x, before * mask0.to(dtype))
    g0 = torch.randn(ROWS, N_IN, generator=gen).to(dtype)
    expected = g0 * mask0.to(dtype)
    native.mask_grad(0, g0)
    assert torch.equal(g0, expected)


def test_each_layer_draws_its_own_mask_stream() -> None:
    native = elementwise_ops(64, [UNITS, UNITS], [0.5, 0.5], torch.float32, CPU, native=True)
    native.begin(torch.Generator().manual_seed(0))
    ones = torch.ones(64, UNITS)
    masks = []
    for i in (0, 1):
        native.dropout(i, ones, torch.empty(64, UNITS), torch.Generator())
        layer_mask = native.masks[i]
        assert layer_mask is not None
        masks.append(layer_mask.clone())
    assert not torch.equal(masks[0], masks[1])


def test_without_a_c_compiler_the_torch_ops_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    lib, why = native._build.__wrapped__()
    assert lib is None and "no C compiler" in why
    monkeypatch.setattr(native, "_build", lambda: (None, why))
    assert isinstance(elementwise_ops(4, [8], [0.5], torch.float32, CPU), TorchOps)
    with pytest.raises(RuntimeError, match="no C compiler"):
        elementwise_ops(4, [8], [0.5], torch.float32, CPU, native=True)


def _fake_cc(folder: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cc = folder / "cc"
    cc.write_text("#!/bin/sh\n" + script)
    cc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")


def test_a_compiler_without_openmp_builds_single_threaded_kernels(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cc(tmp_path, 'case "$*" in *-fopenmp*) echo "cc: error: libgomp.spec not found" >&2; exit 1;; esac\n'
                       f'exec {shutil.which("gcc")} "$@"\n', monkeypatch)
    lib, how = native._build.__wrapped__()
    assert lib is not None and how == "native (single-threaded: no OpenMP)"
    ops = NativeOps(lib, 8, [N_IN], [0.5], torch.float32)
    x = torch.rand(8, N_IN)
    out = torch.empty(8, N_IN)
    ops.begin(torch.Generator().manual_seed(0))
    ops.dropout(0, x, out, torch.Generator())
    mask = ops.masks[0]
    assert mask is not None and torch.equal(out, x * mask)


def test_a_library_that_does_not_load_leaves_the_torch_ops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cc(tmp_path, 'while [ "$1" != "-o" ]; do shift; done; echo "not a library" > "$2"\n', monkeypatch)
    lib, why = native._build.__wrapped__()
    assert lib is None and why.startswith("cc failed:")


def test_torch_ops_only_switches_the_default() -> None:
    assert isinstance(elementwise_ops(4, [8], [0.5], torch.float32, CPU), NativeOps)
    with native.torch_ops_only():
        assert isinstance(elementwise_ops(4, [8], [0.5], torch.float32, CPU), TorchOps)
    assert isinstance(elementwise_ops(4, [8], [0.5], torch.bfloat16, CPU), NativeOps)


@pytest.mark.parametrize("non_saturating", [True, False])
def test_native_loss_heads_agree_with_the_torch_ops(non_saturating: bool) -> None:
    m = 50
    native = elementwise_ops(2 * m, [N_IN], [0.8], torch.float32, CPU, native=True)
    ref = elementwise_ops(2 * m, [N_IN], [0.8], torch.float32, CPU, native=False)
    logits = torch.cat([torch.randn(2 * m - 2, 1) * 8, torch.tensor([[30.0], [-30.0]])])   # and past softplus' 20
    stats = [torch.full((2, 2), 0.25), torch.full((2, 2), 0.25)]
    dl = [ops.d_head(logits, s).clone() for ops, s in ((native, stats[0]), (ref, stats[1]))]
    torch.testing.assert_close(dl[0], dl[1], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(stats[0], stats[1], rtol=1e-6, atol=1e-6)
    g_stats = [torch.full((1,), 0.5), torch.full((1,), 0.5)]
    dg = [ops.g_head(logits[m:], s, non_saturating).clone() for ops, s in ((native, g_stats[0]), (ref, g_stats[1]))]
    torch.testing.assert_close(dg[0], dg[1], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(g_stats[0], g_stats[1], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="rows"):                      # never past the buffers
        native.d_head(torch.zeros(2 * m + 2, 1), stats[0])
