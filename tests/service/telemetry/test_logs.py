"""The JSON log line: every field of the record, the ids when set, and datetime's own timestamp format."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from service.telemetry.logs import JsonFormatter


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("ganserve.test", logging.INFO, __file__, 1, "took %d ms", (3,), None)
    record.created = created
    record.request_id, record.job_id = "req-1", None
    record.__dict__.update(extra)
    return record


def test_a_line_has_the_message_the_set_ids_and_the_extras() -> None:
    line = json.loads(JsonFormatter().format(_record(1.5e9, route="/samples", status=200, when=object())))
    assert line["message"] == "took 3 ms" and line["level"] == "INFO" and line["logger"] == "ganserve.test"
    assert line["request_id"] == "req-1" and "job_id" not in line  # unset ids are left out
    assert line["route"] == "/samples" and line["status"] == 200 and line["when"].startswith("<object")
    assert "pathname" not in line and "args" not in line


@pytest.mark.parametrize("times", [
    (1_790_000_000.0, 1_790_000_000.25, 1_790_000_000.999, 1_790_000_001.0005, 1_790_003_601.5),
    (1_000_000_000.123, 999_999_999.987, 999_999_999.9999996),  # the clock may step back; rounding up a second
])
def test_timestamps_match_datetime_isoformat_across_seconds(times: tuple[float, ...]) -> None:
    formatter = JsonFormatter()  # one instance: the per-second cache is carried from record to record
    for created in times:
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(formatter.format(_record(created)))["ts"] == expected, created
