"""The micro-batcher on its own: batch bounds, order, failures, and the unbatched mode."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from service.serving.batching import MicroBatcher


class Model:
    """x = 2 z, recording each run's row count; the first run blocks until released, so requests queue up."""

    def __init__(self) -> None:
        self.runs: list[int] = []
        self.release = threading.Event()

    def __call__(self, z: np.ndarray) -> np.ndarray:
        if not self.runs:
            self.release.wait(10)
        self.runs.append(len(z))
        return z * 2


def test_queued_requests_share_runs_within_the_row_bound() -> None:
    model = Model()
    batcher = MicroBatcher(model, max_samples=10, wait_ms=0, name="t")
    zs = [np.full((rows, 3), i, np.float32) for i, rows in enumerate((1, 4, 4, 3, 20, 2, 1))]
    futures = [batcher.submit(z, then=lambda x: x.sum()) for z in zs]
    model.release.set()
    assert [f.result(10) for f in futures] == [float(z.sum() * 2) for z in zs]
    # The first request runs alone (the model blocks); the rest fill runs of at most 10 rows in order,
    # except the 20-row request, which is larger than the bound and runs by itself.
    assert model.runs == [1, 8, 3, 20, 3]
    assert batcher.requests == 7 and batcher.batches == 5


def test_a_failing_run_fails_its_requests_and_the_batcher_goes_on() -> None:
    calls = []

    def flaky(z: np.ndarray) -> np.ndarray:
        calls.append(len(z))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return z

    batcher = MicroBatcher(flaky, max_samples=64, wait_ms=0, name="t")
    with pytest.raises(RuntimeError, match="boom"):
        batcher.submit(np.zeros((2, 3), np.float32)).result(10)
    assert batcher.submit(np.ones((1, 3), np.float32)).result(10).tolist() == [[1, 1, 1]]


def test_a_failing_render_fails_only_its_request() -> None:
    batcher = MicroBatcher(lambda z: z, max_samples=64, wait_ms=0, name="t")

    def bad(x: np.ndarray) -> None:
        raise ValueError("render")

    bad_future = batcher.submit(np.zeros((1, 2), np.float32), then=bad)
    with pytest.raises(ValueError, match="render"):
        bad_future.result(10)
    assert batcher.submit(np.ones((1, 2), np.float32), then=lambda x: x.sum()).result(10) == 2.0


def test_unbatched_mode_runs_each_request_alone() -> None:
    model = Model()
    model.release.set()
    batcher = MicroBatcher(model, max_samples=64, wait_ms=5, enabled=False, name="t")
    futures = [batcher.submit(np.zeros((k, 2), np.float32)) for k in (1, 2, 3)]
    assert [len(f.result(10)) for f in futures] == [1, 2, 3]
    assert sorted(model.runs) == [1, 2, 3] and batcher.batches == 3


def test_a_lone_request_runs_on_the_event_loop_and_concurrent_ones_are_batched() -> None:
    threads: list[tuple[int, int]] = []
    release = threading.Event()

    def model(z: np.ndarray) -> np.ndarray:
        if len(threads) == 1:
            release.wait(10)       # the first run on the batcher thread holds on until every request has queued
        threads.append((threading.get_ident(), len(z)))
        return z * 2

    batcher = MicroBatcher(model, max_samples=64, wait_ms=0, name="t")

    async def main() -> tuple[int, list[float]]:
        loop_thread = threading.get_ident()
        alone = await batcher.result(np.ones((3, 2), np.float32), then=lambda x: float(x.sum()))
        assert alone == 12.0 and threads == [(loop_thread, 3)]                  # no hand-off to the thread
        asyncio.get_running_loop().call_later(0.05, release.set)
        together = await asyncio.gather(*(batcher.result(np.full((2, 2), k, np.float32), lambda x: float(x.sum()))
                                          for k in range(6)))
        return loop_thread, together

    loop_thread, together = asyncio.run(main())
    assert together == [8.0 * k for k in range(6)]
    assert all(thread != loop_thread for thread, _ in threads[1:])            # the six went to the batcher
    assert sum(rows for _, rows in threads[1:]) == 12 and batcher.requests == 7
    assert batcher.batches < 7                                                 # and shared runs
