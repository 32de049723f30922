"""Which device a training job runs on: one job per GPU.

A worker's prefork pool processes each have a stable index (billiard reuses a dead process's index for its
replacement), so with several GPUs each process takes GPU index % count: a worker started with
GANSERVE_WORKER_CONCURRENCY equal to its GPU count runs one job on each. CPU otherwise.

Also whether the device does bf16 natively: a job asks for bf16 without knowing which worker runs it, and
bf16 emulated in fp32 units is slower than fp32 itself, so a worker without it trains in fp32 and says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from models.config import TrainConfig

# /proc/cpuinfo flags of the x86 instructions that multiply bf16 in hardware (AVX512-BF16, AMX tiles).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# The flags `ganserve bench train` prints beside its figures: the vector units its products can use.
REPORTED_CPU_FLAGS = ("avx2", "avx512f", *BF16_CPU_FLAGS)
BF16_MIN_CAPABILITY = (8, 0)      # Ampere: the first NVIDIA GPUs with bf16 tensor cores


def pool_index() -> int:
    """This process's index in the worker's pool (0 outside a pool, e.g. `ganserve bench` or a test).

    A pool process has billiard loaded already (Celery's prefork pool is billiard's), so training does not
    import it: it runs where Celery is not installed."""
    process = sys.modules.get("billiard.process")
    return int(getattr(process.current_process(), "index", 0) or 0) if process is not None else 0


def training_device(device: str = "auto") -> torch.device:
    """"auto": this pool process's GPU when there are any, else the CPU; anything else as torch names it."""
    if device != "auto":
        return torch.device(device)
    if not torch.cuda.is_available():
        return torch.device("cpu")
    gpu = torch.device("cuda", pool_index() % torch.cuda.device_count())
    torch.cuda.set_device(gpu)           # else kernels and the CUDA context of unplaced tensors land on GPU 0
    return gpu


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere: no flag is assumed)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 in hardware: compute capability >= 8.0, or a CPU with AVX512-BF16/AMX."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= BF16_MIN_CAPABILITY
    if device.type == "cpu":
        return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)
    return False


def bf16_fallback(config: TrainConfig, device: torch.device) -> str | None:
    """The warning for a bf16 job on a device without native bf16 (it then trains in fp32), else None."""
    if not config.bf16 or native_bf16(device):
        return None
    hardware = f"GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else f"{device.type.upper()}"
    return (f"bf16 was requested, but the worker's {hardware} has no native bf16 (it needs "
            f"{' or '.join(BF16_CPU_FLAGS)} on a CPU, compute capability >= 8.0 on a GPU), so the job trained "
            f"in fp32")


__all__ = ["BF16_CPU_FLAGS", "REPORTED_CPU_FLAGS", "bf16_fallback", "cpu_flags", "native_bf16", "pool_index",
           "training_device"]
