"""The API's batched log handler: routine lines wait, warnings go out at once after them, nothing is lost."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import pytest

from service.telemetry.log_stream import MAX_PENDING_LINES, BatchedStreamHandler


@pytest.fixture()
def logger() -> Iterator[tuple[logging.Logger, io.StringIO, list[BatchedStreamHandler]]]:
    stream = io.StringIO()
    log = logging.getLogger(f"test-log-stream-{time.monotonic_ns()}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handlers: list[BatchedStreamHandler] = []
    yield log, stream, handlers
    for handler in handlers:
        handler.close()


def _attach(log: logging.Logger, stream: io.StringIO, handlers: list[BatchedStreamHandler],
            flush_s: float) -> BatchedStreamHandler:
    handler = BatchedStreamHandler(stream, flush_s)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    handlers.append(handler)
    return handler


def test_routine_lines_wait_and_a_warning_writes_them_first(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, handlers = logger
    handler = _attach(log, stream, handlers, flush_s=3600)
    log.info("one")
    log.debug("two")
    assert stream.getvalue() == ""
    log.warning("three")
    assert stream.getvalue() == "INFO one\nDEBUG two\nWARNING three\n"
    log.info("four")
    handler.close()  # what logging.shutdown does at exit
    assert stream.getvalue().endswith("WARNING three\nINFO four\n")


def test_a_full_batch_is_written_without_waiting(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, handlers = logger
    _attach(log, stream, handlers, flush_s=3600)
    for i in range(MAX_PENDING_LINES):
        log.info("line %d", i)
    assert stream.getvalue().count("\n") == MAX_PENDING_LINES


def test_the_flush_thread_writes_held_lines(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, handlers = logger
    _attach(log, stream, handlers, flush_s=0.05)
    log.info("soon")
    deadline = time.monotonic() + 30
    while "INFO soon" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stream.getvalue() == "INFO soon\n"


def test_flush_s_must_be_positive() -> None:
    with pytest.raises(ValueError, match="flush_s"):
        BatchedStreamHandler(io.StringIO(), 0)
