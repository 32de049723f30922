"""Micro-batching: concurrent requests for one model version share one onnxruntime run.

A request hands its z rows to the model's batcher and gets a concurrent.futures.Future back. One thread per
batcher concatenates whatever is queued (up to `max_samples` rows), runs the model once, and hands each
request its slice. Rendering (PNG encoding, ...) of each slice then runs on a small shared pool, so the
inference thread goes straight on to the next batch while the previous responses are being encoded -- except
for a small, cheap batch with nobody else waiting, which the batcher thread encodes itself: a lone client
then pays one thread hand-off per request, not two.

A lone request skips the thread altogether (MicroBatcher.result): when no other model request is in flight in
the process, the batcher is idle and the work is a small cheap one, it runs on the event loop thread itself, which
would otherwise only wait for it (two thread hand-offs saved, ~0.15 ms of a 3 ms n=64 request: `ganserve bench
serve`'s single client). The loop is then busy for that request's few milliseconds; requests arriving meanwhile
are read right after it and, being several, are batched.

Batches form on their own under load: requests arriving while a batch runs are queued and go together into
the next one. The bounded wait (`wait_s`) is only spent when the previous batch held several requests, i.e.
when there is evidence of concurrency; a lone client never waits for partners that do not exist.

Rows do not interact in a generator's forward pass, and onnxruntime's CPU GEMM gives each row the same bits
whatever the batch around it (tests check this), so batching never changes a response's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# A batcher's thread exits after this long without work and is restarted by the next request, so evicted
# or replaced model versions leave no thread behind.
IDLE_EXIT_S = 30.0

# A batch this small is encoded on the batcher thread when no other request is waiting for the model.
INLINE_RENDER_ROWS = 64

_render_pool: ThreadPoolExecutor | None = None
_render_pool_lock = threading.Lock()


def render_pool() -> ThreadPoolExecutor:
    """Threads for the per-request work after inference (PNG/GIF/JSON encoding; zlib releases the GIL)."""
    global _render_pool
    with _render_pool_lock:
        if _render_pool is None:
            _render_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="render")
        return _render_pool


class _InFlight:
    """Model requests inside MicroBatcher.result right now, in this process (touched on the event loop only)."""

    count = 0


@dataclass
class _Item:
    z: np.ndarray
    then: Callable[[np.ndarray], Any] | None
    future: Future[Any]
    cheap: bool  # `then` is quick (a PNG grid): it may run on the batcher thread


def _finish(item: _Item, x: np.ndarray) -> None:
    if not item.future.set_running_or_notify_cancel():
        return  # the client went away
    try:
        item.future.set_result(item.then(x) if item.then is not None else x)
    except Exception as exc:  # noqa: BLE001 - delivered to the request, which turns it into a 500
        item.future.set_exception(exc)


class MicroBatcher:
    def __init__(self, run: Callable[[np.ndarray], np.ndarray], *, max_samples: int, wait_ms: float,
                 enabled: bool = True, name: str = "model",
                 on_batch: Callable[[float, int], None] | None = None) -> None:
        self._run = run
        self.max_samples = max(1, max_samples)
        self.wait_s = max(0.0, wait_ms) / 1000.0
        self.enabled = enabled
        self.name = name
        self._on_batch = on_batch
        # SimpleQueue: put() is one C call on the event loop thread, no Python-level Condition.
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._carry: _Item | None = None  # a request that did not fit the previous batch (batcher thread only)
        self._lock = threading.Lock()
        self._running = False
        self._busy = False  # the thread is collecting or running a batch
        self._last_batch_requests = 1
        # Counters for tests and the benchmark: how many runs served how many requests.
        self.batches = 0
        self.requests = 0

    def submit(self, z: np.ndarray, then: Callable[[np.ndarray], Any] | None = None,
               cheap: bool = True) -> Future[Any]:
        """Run the model on z's rows (batched with others), then `then(x)` off the event loop."""
        future: Future[Any] = Future()
        item = _Item(z, then, future, cheap)
        if not self.enabled:
            # Unbatched: each request runs the model on its own in the pool, concurrently with the others.
            render_pool().submit(self._run_alone, item)
            return future
        self._queue.put(item)
        with self._lock:  # see _loop's exit: an item put before the thread's last look is never stranded
            if not self._running:
                self._running = True
                threading.Thread(target=self._loop, name=f"batch-{self.name}", daemon=True).start()
        return future

    async def result(self, z: np.ndarray, then: Callable[[np.ndarray], Any] | None = None,
                     cheap: bool = True) -> Any:
        """`then(model(z))` for one request, from the event loop: on the loop's own thread when the request is
        alone (see the module's docstring), else batched by submit()."""
        _InFlight.count += 1
        try:
            await asyncio.sleep(0)  # requests the server has already read reach this point (and count) first
            if (cheap and len(z) <= INLINE_RENDER_ROWS and _InFlight.count == 1 and not self._busy
                    and self._queue.empty()):
                return self._run_here(z, then)
            return await asyncio.wrap_future(self.submit(z, then, cheap))
        finally:
            _InFlight.count -= 1

    def _run_here(self, z: np.ndarray, then: Callable[[np.ndarray], Any] | None) -> Any:
        x = self._timed_run(z)
        with self._lock:  # the batcher thread may count a batch at the same time
            self.batches += 1
            self.requests += 1
        return then(x) if then is not None else x

    def _run_alone(self, item: _Item) -> None:
        try:
            x = self._timed_run(item.z)
        except Exception as exc:  # noqa: BLE001 - delivered to the request
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(exc)
            return
        with self._lock:  # pool threads run this concurrently
            self.batches += 1
            self.requests += 1
        _finish(item, x)

    def _loop(self) -> None:
        while True:
            first, self._carry = self._carry, None
            if first is None:
                try:
                    first = self._queue.get(timeout=IDLE_EXIT_S)
                except queue.Empty:
                    with self._lock:
                        if self._queue.empty():
                            self._running = False
                            return
                    continue
            self._busy = True
            batch = self._collect(first)
            try:
                self._execute(batch)
            except Exception as exc:  # a bug here must fail these requests, not kill the thread
                log.exception("micro-batch of %d requests failed", len(batch))
                for item in batch:
                    with contextlib.suppress(InvalidStateError):
                        item.future.set_exception(exc)
            finally:
                self._busy = False

    def _collect(self, first: _Item) -> list[_Item]:
        """The requests of the next run: `first`, whatever is queued, and -- only when the previous run served
        several requests -- whatever arrives within wait_s, up to max_samples rows."""
        batch, total = [first], len(first.z)
        may_wait = self.wait_s > 0 and self._last_batch_requests > 1
        deadline = time.monotonic() + self.wait_s
        while total < self.max_samples:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if not may_wait or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if total + len(item.z) > self.max_samples:
                self._carry = item  # first in the next batch: order is kept
                break
            batch.append(item)
            total += len(item.z)
        self._last_batch_requests = len(batch)
        return batch

    def _timed_run(self, z: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        x = self._run(z)
        if self._on_batch is not None:
            self._on_batch(time.perf_counter() - started, len(z))
        return x

    def _execute(self, batch: list[_Item]) -> None:
        live = [i for i in batch if not i.future.cancelled()]
        if not live:
            return
        try:
            z = live[0].z if len(live) == 1 else np.concatenate([i.z for i in live])
            x = self._timed_run(z)
        except Exception as exc:
            log.exception("inference failed for a batch of %d requests", len(live))
            for item in live:
                if item.future.set_running_or_notify_cancel():
                    item.future.set_exception(exc)
            return
        with self._lock:
            self.batches += 1
            self.requests += len(live)
        if (len(x) <= INLINE_RENDER_ROWS and all(i.cheap for i in live) and self._carry is None
                and self._queue.empty()):
            # Nobody is waiting for the model: encoding here saves a thread hand-off per request.
            for item, rows in zip(live, _slices(live, x), strict=True):
                _finish(item, rows)
            return
        pool = render_pool()
        for item, rows in zip(live, _slices(live, x), strict=True):
            pool.submit(_finish, item, rows)


def _slices(items: list[_Item], x: np.ndarray) -> list[np.ndarray]:
    bounds = np.cumsum([0] + [len(i.z) for i in items])
    return [x[a:b] for a, b in itertools.pairwise(bounds)]
