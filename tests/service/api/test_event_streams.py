"""Event streams: one LISTEN per API process for all of them, woken by the database's notifications; caps
per client and per server (429); a stream ends when its job does."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from service.db.engine import session_scope
from service.db.tables import Job
from service.jobs.status import JobStatus
from service.keys import key_hash
from service.settings import get_settings
from tests.conftest import TEST_API_KEY


def _running_job(name: str) -> uuid.UUID:
    job_id = uuid.uuid4()
    with session_scope() as session:  # no worker touches it: the test moves it by hand
        session.add(Job(id=job_id, kind="train", model_name=name, dataset="mnist", config={"preset": "quick"},
                        status=JobStatus.RUNNING, progress=0.0, iteration=0, attempts=1, cancel_requested=False))
    return job_id


def _listeners() -> int:
    with session_scope() as session:
        return int(session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                       "'ganserve-events' AND query LIKE 'LISTEN%'")) or 0)


class Reader(threading.Thread):
    """One event stream, its frames collected as they arrive."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.frames, self.status = url, [], 0
        self.start()

    def run(self) -> None:
        with httpx.stream("GET", self.url, timeout=60) as response:
            self.status = response.status_code
            for line in response.iter_lines():
                if line.startswith(("event: ", "data: ")):
                    self.frames.append((time.monotonic(), line))

    def saw(self, words: str) -> float | None:
        return next((at for at, line in list(self.frames) if words in line), None)


def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_streams_share_one_listen_are_woken_by_changes_and_end_with_the_job(live_server: str) -> None:
    job_id = _running_job("events-hub")
    readers = [Reader(f"{live_server}/jobs/{job_id}/events") for _ in range(3)]
    _until(lambda: all(r.saw('"status":"running"') for r in readers))
    _until(lambda: _listeners() == 1)       # three streams, one LISTEN in the API process
    time.sleep(1.0)
    with session_scope() as session:
        changed = time.monotonic()
        session.execute(text("UPDATE jobs SET progress = 0.5, iteration = 123 WHERE id = :id"), {"id": job_id})
    _until(lambda: all(r.saw('"iteration":123') for r in readers), timeout=3)
    # Woken by the notification, not by the fallback read every event_fallback_s.
    assert max(r.saw('"iteration":123') or 0 for r in readers) - changed < get_settings().event_fallback_s / 2
    with session_scope() as session:
        session.execute(text("UPDATE jobs SET status = 'succeeded', progress = 1.0 WHERE id = :id"), {"id": job_id})
    for reader in readers:
        reader.join(timeout=10)
        assert not reader.is_alive() and reader.saw("event: end"), reader.frames


def test_open_streams_are_capped_per_client_and_per_server(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.api.event_hub import hub

    job_id = _running_job("events-caps")
    me = "key:" + key_hash(TEST_API_KEY)
    monkeypatch.setattr(get_settings(), "event_streams_per_client", 1)
    with hub.slot(me):                       # this client's one stream
        refused = client.get(f"/jobs/{job_id}/events")
        assert refused.status_code == 429 and "event_streams_per_client" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1
    monkeypatch.setattr(get_settings(), "event_streams_max", 1)
    with hub.slot("ip:203.0.113.9"):         # someone else holds the server's only stream
        refused = client.get(f"/jobs/{job_id}/events")
        assert refused.status_code == 429 and "event_streams_max" in refused.json()["detail"]
    with session_scope() as session:
        session.execute(text("UPDATE jobs SET status = 'cancelled' WHERE id = :id"), {"id": job_id})
    ended = client.get(f"/jobs/{job_id}/events")   # a finished job: one frame, then end, then closed
    assert ended.status_code == 200 and "event: end" in ended.text


def test_a_client_that_goes_away_gives_its_stream_back(live_server: str) -> None:
    """A closed connection ends its stream on the server at once, freeing its place under the per-client cap."""
    job_id = _running_job("events-gone")
    url = f"{live_server}/jobs/{job_id}/events"
    cap = get_settings().event_streams_per_client
    with httpx.Client(timeout=10) as http:
        with contextlib.ExitStack() as streams:
            assert _all_open(http, url, cap, streams)
            assert http.get(url).status_code == 429         # the cap is reached: the check below can fail
        _until(lambda: _all_open(http, url, cap), timeout=5)  # every place given back, or one is refused


def _all_open(http: httpx.Client, url: str, n: int, streams: contextlib.ExitStack | None = None) -> bool:
    """n streams opened at once (kept open in `streams`, else closed again); False if one is refused."""
    with contextlib.ExitStack() as own:
        held = streams or own
        return all(held.enter_context(http.stream("GET", url)).status_code == 200 for _ in range(n))
