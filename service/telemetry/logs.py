"""Logging for the API and the workers: one JSON object per line, carrying the request id and the job id.

The ids live in contextvars: the HTTP middleware sets request_id for everything a request logs (threadpool
routes included: Starlette copies the context into the worker thread), the worker sets job_id while it
runs a job. Secrets never reach a log line: settings hold keys as SecretStr, and nothing logs headers.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from service.settings import get_settings
from service.telemetry.log_stream import BatchedStreamHandler

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("job_id", default=None)

# LogRecord attributes that are not "extra" fields passed by the caller.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message"}  # uvicorn's ANSI-coloured copy of the message
_IDS = ("request_id", "job_id")  # left out of a line while unset


_base_factory = logging.getLogRecordFactory()


@contextmanager
def job_context(value: object) -> Iterator[None]:
    """Log lines inside carry this job id (the way to name a job in a log line: not extra=)."""
    token = job_id.set(str(value))
    try:
        yield
    finally:
        job_id.reset(token)


def _record_with_ids(*args: object, **kwargs: object) -> logging.LogRecord:
    """Stamp the ids on every record when it is created, so every handler (tests' included) sees them."""
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id.get()
    record.job_id = job_id.get()
    return record


# json.dumps builds a new encoder per call unless every option is the default.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
_PLAIN = (int, float, bool, str, type(None))


class JsonFormatter(logging.Formatter):
    """One JSON object per record. It formats every request's log line, so the encoder is built once and the
    date and time are formatted once per second."""

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # the formatted date and time of the last record's second

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key in entry or (value is None and key in _IDS):
                continue
            entry[key] = value if isinstance(value, _PLAIN) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODE(entry)

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, exactly as datetime.isoformat(timespec="milliseconds") writes it."""
        second = int(created)
        micro = round((created - second) * 1e6)  # datetime rounds to the microsecond (half to even) first
        if micro == 1_000_000:
            second, micro = second + 1, 0
        cached_second, text = self._second
        if second != cached_second:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)  # one store: a concurrent reader sees the old pair or the new one
        return f"{text}.{micro // 1000:03d}+00:00"


class _TextFormatter(logging.Formatter):
    """Plain lines for a terminal (settings.json_logs = false), still naming the ids."""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={getattr(record, k)}" for k in _IDS if getattr(record, k, None))
        line = super().format(record)
        return f"{line} [{ids}]" if ids else line


def configure(json_lines: bool | None = None, level: int = logging.INFO, flush_s: float = 0.0) -> None:
    """Route the root logger, uvicorn's and Celery's through one handler on stderr. Idempotent.

    flush_s > 0 (the API: settings.log_flush_s) writes INFO and DEBUG lines in batches at most that far apart
    (service/telemetry/log_stream.py); 0 writes every line at once."""
    use_json = get_settings().json_logs if json_lines is None else json_lines
    logging.setLogRecordFactory(_record_with_ids)
    handler: logging.Handler = (BatchedStreamHandler(sys.stderr, flush_s) if flush_s > 0
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(JsonFormatter() if use_json else
                         _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_ganserve", False):
            root.removeHandler(old)
            old.close()  # a batched handler writes what it holds and stops its flush thread
    handler._ganserve = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn installs its own plain handlers before importing the app: send its lines through ours. Its
    # access log is replaced by service/api/context.py's request log (which has the request id).
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
