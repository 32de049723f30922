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

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("job_id", default=None)

# LogRecord attributes that are not "extra" fields passed by the caller.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message"}  # uvicorn's ANSI-coloured copy of the message


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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if value is None and key in ("request_id", "job_id"):
                continue
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, (int, float, bool, str, type(None))) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    """Plain lines for a terminal (settings.json_logs = false), still naming the ids."""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={getattr(record, k)}" for k in ("request_id", "job_id") if getattr(record, k, None))
        line = super().format(record)
        return f"{line} [{ids}]" if ids else line


def configure(json_lines: bool | None = None, level: int = logging.INFO) -> None:
    """Route the root logger, uvicorn's and Celery's through one handler on stderr. Idempotent."""
    from service.settings import get_settings

    use_json = get_settings().json_logs if json_lines is None else json_lines
    logging.setLogRecordFactory(_record_with_ids)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else
                         _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_ganserve", False):
            root.removeHandler(old)
    handler._ganserve = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn installs its own plain handlers before importing the app: send its lines through ours. Its
    # access log is replaced by service.observability's request log (which has the request id).
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
