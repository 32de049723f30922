"""Where onnxruntime runs: the execution providers and the cores this process may use. Shared by the serving
registry and the scoring jobs, which need nothing else of serving."""

from __future__ import annotations

import os

import onnxruntime as ort


def providers() -> list[str]:
    """CUDA when onnxruntime-gpu is installed (it lists the provider), always CPU as the fallback."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours taskset / container CPU sets
    except AttributeError:  # macOS
        return os.cpu_count() or 1
