"""Which device a training job runs on: one job per GPU.

A worker's prefork pool processes each have a stable index (billiard reuses a dead process's index for its
replacement), so with several GPUs each process takes GPU index % count: a worker started with
GANSERVE_WORKER_CONCURRENCY equal to its GPU count runs one job on each. CPU otherwise.
"""

from __future__ import annotations

import sys

import torch


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


__all__ = ["pool_index", "training_device"]
