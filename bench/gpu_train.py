"""Training speed of the paper-mnist nets on a GPU: both engines, fp32 and bf16, plain and CUDA-graphed.

At batch 100 the nets are small (a 1200-wide product takes microseconds on a modern GPU), so a step is bound by
kernel launches and Python, not arithmetic. `plain` runs worker/training/loop.py's train itself (stopped by its
should_stop hook), timed between two synchronisations; `graphed` captures one iteration (k = 1: a D-step then
a G-step) of the same engine in a CUDA graph and replays it, which removes the launch cost and shows what it is.

The graphed figure is a speed ceiling, not a training mode: the replay repeats the captured minibatch rows and
learning rate (both chosen on the CPU side).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from models.config import PRESETS, TrainConfig
from worker.training.engine import Engine
from worker.training.fused import FusedEngine
from worker.training.hooks import QuietHooks, TrainingStopped
from worker.training.loop import AutogradEngine, train
from worker.training.optim import learning_rate, momentum


class _Window(QuietHooks):
    """TrainHooks that time iterations warmup+1.. between two device synchronisations, then stop the run."""

    def __init__(self, seconds: float, device: torch.device, warmup: int = 20) -> None:
        self.seconds, self.device, self.warmup = seconds, device, warmup
        self.calls, self.t0, self.t1 = 0, 0.0, 0.0


    def should_stop(self) -> bool:
        self.calls += 1                                       # call n comes after n - 1 iterations
        if self.calls == self.warmup:
            self.t0 = _synced(self.device)
        elif self.calls > self.warmup and time.perf_counter() - self.t0 >= self.seconds:
            self.t1 = _synced(self.device)
            return True
        return False

    def rate(self) -> float:
        return (self.calls - self.warmup) / (self.t1 - self.t0)


def _synced(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def bench_config(engine: str, bf16: bool) -> TrainConfig:
    """paper-mnist (batch 100, k = 1, alternating) with no logging, snapshots or checkpoints in the window."""
    return PRESETS["paper-mnist"].replace(iterations=10**7, log_every=10**7, snapshot_every=10**7,
                                          checkpoint_seconds=1e9, engine=engine, bf16=bf16)


def plain_rate(config: TrainConfig, data: np.ndarray, device: torch.device, seconds: float,
               warmup: int = 20) -> float:
    """Iterations per second of the training loop itself, after `warmup` iterations."""
    window = _Window(seconds, device, warmup)
    try:
        train(config, data, window, device=str(device))
    except TrainingStopped:
        pass
    return window.rate()


def _graphable(engine: Engine) -> Engine:
    """The engine made capturable: autocast without its cast cache (see below)."""
    if isinstance(engine, AutogradEngine):
        config = engine.config
        # Autocast's cast cache would hold tensors from outside the graph's memory pool.
        engine.autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=config.bf16,  # type: ignore[method-assign]
                                                 cache_enabled=False)
    return engine


def graphed_rate(config: TrainConfig, data: np.ndarray, device: torch.device, seconds: float) -> float:
    """Iterations per second of one captured iteration replayed back to back."""
    engine = _graphable((FusedEngine if config.uses_fused_engine else AutogradEngine)(config, data, device, None))
    lr, mu = learning_rate(config, 0), momentum(config, 0)

    def step() -> None:
        engine.d_step(lr, mu)
        engine.g_step(lr, mu)

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):                             # warm-up off the default stream, as capture needs
        for _ in range(3):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    if hasattr(graph, "register_generator_state"):
        graph.register_generator_state(engine.rng)            # the run's generator, not the default one
    with torch.cuda.graph(graph):
        step()
    for _ in range(10):
        graph.replay()
    t0, n = _synced(device), 0
    while time.perf_counter() - t0 < seconds:
        for _ in range(50):
            graph.replay()
        n += 50
    return n / (_synced(device) - t0)


def _attempt(fn: Callable[[], float]) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        return {"it_per_s": round(fn(), 1), "seconds": round(time.perf_counter() - t0, 1)}
    except Exception as exc:  # noqa: BLE001 - one variant failing must not lose the others' figures
        return {"it_per_s": None, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def run(data: np.ndarray, device: torch.device, seconds: float, warmup: int = 20) -> dict[str, Any]:
    """{engine: {precision: {plain: {...}, graphed: {...}}}}: `seconds` per window, eight windows."""
    out: dict[str, Any] = {}
    for engine in ("fused", "autograd"):
        out[engine] = {}
        for precision in ("fp32", "bf16"):
            config = bench_config(engine, precision == "bf16")
            plain = _attempt(lambda c=config: plain_rate(c, data, device, seconds, warmup))
            graphed = _attempt(lambda c=config: graphed_rate(c, data, device, seconds)) \
                if device.type == "cuda" else {"it_per_s": None, "error": "CUDA graphs need a GPU"}
            speedup = round(graphed["it_per_s"] / plain["it_per_s"], 2) \
                if graphed["it_per_s"] and plain["it_per_s"] else None
            out[engine][precision] = {"plain": plain, "graphed": graphed, "graph_speedup": speedup}
    return out


__all__ = ["bench_config", "graphed_rate", "plain_rate", "run"]
