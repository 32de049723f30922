"""GET /jobs/{id}/events (Server-Sent Events) and GET /jobs/{id}/toy against a live server.

Job rows are written straight into PostgreSQL, as a worker would, so the stream's contract is tested without
a training run: what it sends, in which order, from where it resumes, and that it ends.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from service.db.engine import session_scope
from service.db.tables import Job, JobMetric, JobSnapshot


def make_job(status: str = "running", dataset: str = "mnist", iterations: int = 100) -> uuid.UUID:
    job_id = uuid.uuid4()
    with session_scope() as session:
        session.add(Job(id=job_id, kind="train", model_name="events-test", dataset=dataset,
                        config={"preset": "quick", "iterations": iterations}, status=status, progress=0.0,
                        iteration=0, attempts=1, cancel_requested=False))
    return job_id


def add_rows(job_id: uuid.UUID, iterations: list[int], snapshots: list[int] = ()) -> None:  # type: ignore[assignment]
    with session_scope() as session:
        for it in iterations:
            session.add(JobMetric(job_id=job_id, iteration=it, values={"iteration": it, "d_loss": 0.6,
                                                                         "g_loss": 0.8, "it_per_s": 50.0}))
        for it in snapshots:
            session.add(JobSnapshot(job_id=job_id, iteration=it, blob_key=f"snapshots/{job_id}/{it:09d}.png"))
        job = session.get(Job, job_id)
        if iterations:
            job.iteration = max(iterations)  # type: ignore[union-attr]
            job.progress = max(iterations) / 100  # type: ignore[union-attr]


def finish(job_id: uuid.UUID, status: str = "succeeded") -> None:
    with session_scope() as session:
        job = session.get(Job, job_id)
        job.status = status  # type: ignore[union-attr]
        job.progress = 1.0  # type: ignore[union-attr]


def parse(text: str) -> list[dict[str, Any]]:
    """SSE frames -> [{event, id, data}] (comments and retry lines dropped)."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith((":", "retry:")):
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if "event" in fields:
            events.append({"event": fields["event"], "id": fields.get("id"), "data": json.loads(fields["data"])})
    return events


@pytest.fixture(scope="module")
def api(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


def read_stream(api: httpx.Client, job_id: uuid.UUID, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    with api.stream("GET", f"/jobs/{job_id}/events", headers=headers or {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse(response.read().decode())


def test_a_finished_job_streams_everything_then_ends(api: httpx.Client) -> None:
    job_id = make_job()
    add_rows(job_id, [10, 20, 30], snapshots=[20])
    finish(job_id)
    events = read_stream(api, job_id)
    names = [e["event"] for e in events]
    assert names == ["job", "metrics", "snapshot", "end"]
    assert events[0]["data"]["status"] == "succeeded" and events[0]["data"]["id"] == str(job_id)
    assert [r["iteration"] for r in events[1]["data"]] == [10, 20, 30] and events[1]["id"] == "30"
    assert events[2]["data"] == {"iteration": 20, "url": f"/jobs/{job_id}/snapshots/20"}
    assert events[3]["data"] == {"status": "succeeded"}


def test_last_event_id_resumes_after_that_iteration(api: httpx.Client) -> None:
    job_id = make_job()
    add_rows(job_id, [10, 20, 30, 40], snapshots=[10, 20, 40])
    finish(job_id, "cancelled")
    events = read_stream(api, job_id, {"Last-Event-ID": "20"})
    metrics = [r["iteration"] for e in events if e["event"] == "metrics" for r in e["data"]]
    snaps = [e["data"]["iteration"] for e in events if e["event"] == "snapshot"]
    assert metrics == [30, 40]
    assert snaps == [20, 40]  # from the cursor inclusive: a snapshot may land just after its metrics row
    assert events[-1] == {"event": "end", "id": None, "data": {"status": "cancelled"}}
    # Garbage is "from the start", not an error.
    assert len([e for e in read_stream(api, job_id, {"Last-Event-ID": "x"}) if e["event"] == "metrics"]) == 1


def test_a_running_job_is_pushed_live_until_it_finishes(api: httpx.Client) -> None:
    job_id = make_job()
    received: list[dict[str, Any]] = []
    started = time.monotonic()

    def worker() -> None:  # writes as a training run would, while the stream is open
        for step in (10, 20, 30):
            time.sleep(0.8)
            add_rows(job_id, [step], snapshots=[step] if step == 20 else [])
        time.sleep(0.8)
        finish(job_id)

    thread = threading.Thread(target=worker)
    thread.start()
    with api.stream("GET", f"/jobs/{job_id}/events") as response:
        buffer = ""
        for chunk in response.iter_text():
            buffer += chunk
            *frames, buffer = buffer.split("\n\n")
            for frame in frames:
                received.extend((e | {"t": time.monotonic() - started}) for e in parse(frame + "\n\n"))
    thread.join()
    metric_events = [e for e in received if e["event"] == "metrics"]
    assert [r["iteration"] for e in metric_events for r in e["data"]] == [10, 20, 30]
    assert len(metric_events) >= 2  # pushed as they came, not once at the end
    jobs = [e["data"] for e in received if e["event"] == "job"]
    assert jobs[0]["status"] == "running" and jobs[-1]["status"] == "succeeded"
    assert len({j["progress"] for j in jobs}) >= 3
    assert [e["data"]["iteration"] for e in received if e["event"] == "snapshot"] == [20]
    assert received[-1]["event"] == "end"


def test_unknown_job_is_a_404_problem(api: httpx.Client) -> None:
    response = api.get(f"/jobs/{uuid.uuid4()}/events")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_toy_jobs_stream_figure_1(api: httpx.Client) -> None:
    from worker import figure1_store as toy_snapshot

    rng = np.random.default_rng(0)
    data = rng.normal(4.0, 0.5, size=(5000, 1))
    job_id = make_job(dataset="toy-1d")

    def discriminate(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(x[:, 0] - 4))

    for it in (100, 200):
        fig = toy_snapshot.compute(it, lambda z: z * 0.5, discriminate, data, latent_dim=1, noise_low=-1.0,
                                   noise_high=1.0)
        toy_snapshot.store(job_id, fig)
    add_rows(job_id, [100, 200])
    finish(job_id)
    figures = [e["data"] for e in read_stream(api, job_id) if e["event"] == "figure1"]
    assert [f["iteration"] for f in figures] == [200]  # only the newest: the page draws the latest
    listed = api.get(f"/jobs/{job_id}/toy").json()
    assert [f["iteration"] for f in listed] == [100, 200]
    assert [f["iteration"] for f in api.get(f"/jobs/{job_id}/toy", params={"after": 100}).json()] == [200]
    assert api.get(f"/jobs/{uuid.uuid4()}/toy").status_code == 404
