"""The lease's heartbeat thread hears a cancel through PostgreSQL's NOTIFY, long before its next beat."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import text

from service.db.engine import session_scope
from service.db.notify import CANCEL
from service.db.tables import Job
from service.jobs import store as jobs
from service.jobs.status import JobStatus
from service.settings import get_settings
from worker.leases import claim, finish


def _listening(job_id: uuid.UUID) -> int:
    """Connections of this job's heartbeat thread that have LISTENed (named after the job)."""
    with session_scope() as session:
        return int(session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                                       "AND query = :q"),
                                  {"name": f"ganserve-cancel-{job_id}", "q": f'LISTEN "{CANCEL}"'}) or 0)


def _queued_job(model: str) -> uuid.UUID:
    """A queued training job written straight to the table (no broker message: the test claims it itself)."""
    job_id = uuid.uuid4()
    with session_scope() as session:
        session.add(Job(id=job_id, kind="train", model_name=model, dataset="mnist", config={"preset": "quick"},
                        status=JobStatus.QUEUED, progress=0.0, iteration=0, attempts=0, cancel_requested=False))
    return job_id


def test_a_cancel_reaches_the_running_job_within_a_poll_not_a_heartbeat(stack: None,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "heartbeat_s", 30.0)         # the next beat is far away
    job_id = _queued_job("lease-cancel")
    lease = claim(job_id)
    assert lease is not None
    with lease.heartbeating():
        deadline = time.monotonic() + 10
        while not _listening(job_id) and time.monotonic() < deadline:   # the thread's LISTEN is in place
            time.sleep(0.02)
        assert _listening(job_id) == 1, "the heartbeat thread never LISTENed"
        assert not lease.should_stop()
        asked = time.monotonic()
        jobs.cancel(job_id)
        while not lease.should_stop() and time.monotonic() - asked < 5:
            time.sleep(0.01)
        heard = time.monotonic() - asked
        assert lease.cancel_requested.is_set(), "the cancel was not heard"
        assert heard < 3.0, f"heard after {heard:.2f} s"               # a heartbeat is 30 s here
    # The thread ends with the job, and closes its connection.
    deadline = time.monotonic() + 5
    while _listening(job_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _listening(job_id) == 0
    finish(lease, JobStatus.CANCELLED, None)                          # as run_leased would


def test_an_unexpected_failure_leaves_words_for_the_user_and_the_details_in_the_log(
        stack: None, caplog: pytest.LogCaptureFixture) -> None:
    from worker.leases import run_leased

    job_id = _queued_job("lease-error")
    lease = claim(job_id)
    assert lease is not None

    def body(_: object) -> None:
        raise RuntimeError("INSERT INTO secrets VALUES ('hunter2') failed at /srv/ganserve/x.py")

    class Stopped(Exception):
        pass

    with caplog.at_level("ERROR"):
        run_leased(lease, body, stopped=Stopped)
    error = jobs.get(job_id).error or ""
    assert "hunter2" not in error and "INSERT" not in error and "RuntimeError" not in error
    assert str(job_id) in error and "Retry" in error
    assert any("hunter2" in (r.exc_text or "") or "hunter2" in str(r.exc_info) for r in caplog.records)
