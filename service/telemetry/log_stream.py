"""A stream handler that writes routine log lines in batches: the API's request log without a write(2) per request.

The API logs one INFO line per request. Written one by one, that line's write(2) (and flush) is the largest
single cost left on the request path: ~0.1 ms of CPU per /samples request in `ganserve bench serve`, more
than formatting the line. nginx's `access_log ... buffer= flush=` makes the same trade:
INFO and DEBUG lines wait at most `flush_s` (or until MAX_PENDING_LINES are waiting); a WARNING or worse is
written at once, after the lines held before it, so the order is kept. logging.shutdown flushes at exit; a
process killed outright loses at most the last `flush_s` of routine lines.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TextIO

MAX_PENDING_LINES = 512


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    def __init__(self, stream: TextIO, flush_s: float) -> None:
        if flush_s <= 0:
            raise ValueError(f"flush_s must be > 0 seconds (0 means a plain StreamHandler); got {flush_s}")
        super().__init__(stream)
        self.flush_s = flush_s
        self._pending: list[str] = []
        self._stopped = threading.Event()
        self._start_flushing()
        # A forked child has no flush thread (only the forking thread survives a fork) and a copy of the lines
        # the parent still holds, which the parent writes.
        os.register_at_fork(after_in_child=self._after_fork)

    def emit(self, record: logging.LogRecord) -> None:
        # Handler.handle calls this with self.lock held.
        try:
            self._pending.append(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING or len(self._pending) >= MAX_PENDING_LINES:
                self.flush()
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # an RLock: emit already holds it
            if self._pending:
                self.stream.write("".join(self._pending))
                self._pending.clear()
            super().flush()

    def close(self) -> None:
        self._stopped.set()
        try:
            self.flush()
        finally:
            super().close()

    def _start_flushing(self) -> None:
        threading.Thread(target=self._flush_every, name="log-flush", daemon=True).start()

    def _after_fork(self) -> None:
        self._pending.clear()
        if not self._stopped.is_set():
            self._start_flushing()

    def _flush_every(self) -> None:
        while not self._stopped.wait(self.flush_s):
            try:
                self.flush()
            except (OSError, ValueError):  # the stream is gone (interpreter shutdown): nothing left to do
                return
