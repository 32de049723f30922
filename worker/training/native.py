"""The C kernels of kernels.c (worker/training/elementwise.py's NativeOps, optim.py's bf16 momentum): compiled
with the machine's C compiler at first use in a process (`cc -O3 -march=native -fopenmp`: the CPU model changes
between machines, so nothing is built ahead), about half a second, and loaded with ctypes. Without a compiler,
or inside torch_ops_only(), callers use torch ops instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

log = logging.getLogger(__name__)
_SOURCE = Path(__file__).with_name("kernels.c")
_allowed = True


@contextlib.contextmanager
def torch_ops_only() -> Iterator[None]:
    """Code run inside uses torch ops instead of the kernels (`ganserve bench train` times both)."""
    global _allowed
    before, _allowed = _allowed, False
    try:
        yield
    finally:
        _allowed = before


def status() -> str:
    """'native' (or 'native (single-threaded: ...)'), or why the kernels are not built (`ganserve bench train`)."""
    return _build()[1]


def library() -> ctypes.CDLL | None:
    """kernels.c loaded, or None where it cannot be built or torch_ops_only() is in force."""
    return _build()[0] if _allowed else None


def momentum_bf16(device: torch.device) -> Callable[..., None] | None:
    """kernels.c's one-pass bf16 momentum update (worker/training/optim.py's Momentum), where the kernels run."""
    lib = library() if device.type == "cpu" else None
    return lib.momentum_bf16 if lib is not None else None


@functools.cache
def _build() -> tuple[ctypes.CDLL | None, str]:
    """Compile kernels.c into a temporary folder and load it (about half a second, once per process). Without
    OpenMP (a compiler without libgomp) the kernels are built single-threaded."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return _unbuilt("no C compiler (cc or gcc) on PATH")
    why = ""
    for threads in (["-fopenmp"], []):
        with tempfile.TemporaryDirectory(prefix="ganserve-kernels-") as tmp:
            lib = Path(tmp) / "kernels.so"
            cmd = [cc, "-O3", "-march=native", *threads, "-shared", "-fPIC", "-o", str(lib), str(_SOURCE), "-lm"]
            try:
                subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
                loaded = ctypes.CDLL(str(lib))  # torch is loaded first: its libgomp serves the kernels' threads
            except (OSError, subprocess.SubprocessError) as exc:
                detail = (getattr(exc, "stderr", None) or str(exc)).strip()
                why = f"{Path(cc).name} failed: {detail.splitlines()[-1] if detail else type(exc).__name__}"
                continue
        return _declare(loaded), "native" if threads else "native (single-threaded: no OpenMP)"
    return _unbuilt(why)


def _unbuilt(why: str) -> tuple[None, str]:
    log.warning("the C kernels were not built (%s): the fused engine's elementwise steps run as torch ops, slower",
                why)
    return None, why


def _declare(loaded: ctypes.CDLL) -> ctypes.CDLL:
    """The kernels' argument types (ctypes would pass Python ints as 32-bit C ints)."""
    i64, u64, u32, ptr = ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p
    for suffix in ("f32", "bf16"):
        getattr(loaded, f"dropout_{suffix}").argtypes = [ptr, i64, ptr, i64, ptr, i64, i64, u64, u32]
        getattr(loaded, f"maxout_{suffix}").argtypes = [ptr, i64, ptr, i64, i64, i64, i64]
        getattr(loaded, f"maxout_grad_{suffix}").argtypes = [ptr, i64, ptr, i64, ptr, ptr, i64, i64, i64, i64]
        getattr(loaded, f"mask_grad_{suffix}").argtypes = [ptr, i64, ptr, i64, i64]
    loaded.momentum_bf16.argtypes = [ptr, i64, ptr, i64, ptr, i64, ptr, i64, i64, i64, ctypes.c_int, ctypes.c_float,
                                     ctypes.c_float]
    loaded.d_head.argtypes = [ptr, i64, i64, ptr, ptr]
    loaded.g_head.argtypes = [ptr, i64, i64, ctypes.c_int, ptr, ptr]
    return loaded


__all__ = ["library", "momentum_bf16", "status", "torch_ops_only"]
