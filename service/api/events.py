"""GET /jobs/{id}/events: a job's progress pushed as Server-Sent Events, read from PostgreSQL.

PostgreSQL is the source of truth, so the stream polls it (short queries in a worker thread, the wait an
`asyncio.sleep`) rather than listening to Redis: a reconnecting browser sees exactly what the database holds.

Events (all JSON):
  `job`      the job as GET /jobs/{id} returns it, sent when its status, progress or iteration changes
  `metrics`  a JSON list of new metric rows; `id:` is the last row's iteration (the resume cursor)
  `snapshot` {"iteration", "url"} of a new fixed-z sample grid
  `figure1`  toy-1d jobs only: the newest Figure 1 data (service/evaluation/figure1.py), when a newer one exists
  `end`      the job is finished and everything has been sent; the client should close
sse-starlette does the framing, a comment line every HEARTBEAT_S so proxies keep the connection open, and
ends the stream when the client goes away. On reconnect the browser sends `Last-Event-ID` (the last metrics
iteration it got): only later rows are sent again.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Header
from sse_starlette import EventSourceResponse

from service.api.schemas import JobOut
from service.evaluation import collapse, figure1
from service.jobs import store

router = APIRouter(prefix="/jobs", tags=["jobs"])

POLL_S = 0.75
HEARTBEAT_S = 15.0
# One connection is closed after this long; EventSource reconnects by itself with Last-Event-ID, so a
# forgotten tab does not hold a database-polling loop forever on one server.
MAX_STREAM_S = 600.0
RETRY_MS = 2000
# Datasets whose trainer stores Figure 1 blobs (worker/toy_snapshot.py); other jobs skip that query.
FIGURE1_DATASETS = frozenset({"toy-1d"})


@dataclass
class Cursor:
    """What this stream has already sent."""

    after: int = -1  # metrics rows with iteration > after are still to send
    snapshots_sent: set[int] = field(default_factory=set)
    figure1_after: int = -1
    job_state: tuple[Any, ...] | None = None
    warning: str | None = None          # the job's warning, as of iteration warning_at
    warning_at: int = -1


@dataclass
class Poll:
    job: JobOut
    metrics: list[dict[str, Any]]
    snapshots: list[dict[str, Any]]
    figures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return store.is_finished(self.job.status)


def poll(job_id: uuid.UUID, cursor: Cursor, snapshots_from: int) -> Poll:
    """One round of reads, in this order on purpose: the job row first, then metrics, then snapshots.
    The trainer writes sequentially, so a finished status read first means the later reads see every row,
    and every snapshot written before the last metric row read is seen by the snapshot query."""
    row = store.get(job_id)
    if row.iteration != cursor.warning_at:     # the warning only changes as the job moves on
        cursor.warning, cursor.warning_at = collapse.warning(row), row.iteration
    job = JobOut.of(row, cursor.warning)
    rows = store.metrics(job_id, cursor.after)
    snaps = [{"iteration": s.iteration, "url": f"/jobs/{job_id}/snapshots/{s.iteration}"}
             for s in store.snapshots(job_id)
             if s.iteration >= snapshots_from and s.iteration not in cursor.snapshots_sent]
    figures = (figure1.after(job_id, cursor.figure1_after, newest_only=True)
               if job.dataset in FIGURE1_DATASETS else [])
    return Poll(job, rows, snaps, figures)


def parse_last_event_id(value: str | None) -> int:
    """The iteration the client already has; anything unparsable means "start from the beginning"."""
    try:
        return max(-1, int(value)) if value is not None else -1
    except ValueError:
        return -1


Frame = dict[str, Any]  # an event for sse-starlette: event, data and optionally id and retry


def sse(event: str, data: Any, event_id: int | None = None) -> Frame:
    frame: Frame = {"event": event, "data": json.dumps(data, separators=(",", ":"), default=str)}
    if event_id is not None:
        frame["id"] = str(event_id)
    return frame


def render(result: Poll, cursor: Cursor) -> list[Frame]:
    """The frames for one poll, advancing the cursor. Snapshot frames carry no id, so the browser's
    Last-Event-ID stays the metrics cursor."""
    frames: list[Frame] = []
    job = result.job
    state = (job.status, job.progress, job.iteration, job.cancel_requested, job.error, job.warning)
    if state != cursor.job_state:
        cursor.job_state = state
        frames.append(sse("job", job.model_dump(mode="json")))
    if result.metrics:
        cursor.after = int(result.metrics[-1]["iteration"])
        frames.append(sse("metrics", result.metrics, cursor.after))
    for snap in result.snapshots:
        cursor.snapshots_sent.add(int(snap["iteration"]))
        frames.append(sse("snapshot", snap))
    for fig in result.figures:
        cursor.figure1_after = max(cursor.figure1_after, int(fig["iteration"]))
        frames.append(sse("figure1", fig))
    return frames


async def stream(job_id: uuid.UUID, after: int) -> AsyncIterator[Frame]:
    cursor = Cursor(after=after)
    # On reconnect a snapshot at the cursor's own iteration may have been written after its metrics row:
    # resend from the cursor inclusive; the client ignores a snapshot iteration it already shows.
    snapshots_from = max(after, 0)
    yield {"comment": "connected", "retry": RETRY_MS}
    started = time.monotonic()
    while True:
        result = await to_thread.run_sync(poll, job_id, cursor, snapshots_from)
        for frame in render(result, cursor):
            yield frame
        if result.finished:
            yield sse("end", {"status": result.job.status})
            return
        if time.monotonic() - started >= MAX_STREAM_S:
            return
        await asyncio.sleep(POLL_S)


@router.get("/{job_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(job_id: uuid.UUID,
                     last_event_id: str | None = Header(default=None)) -> EventSourceResponse:
    """Server-Sent Events for one job until it finishes: `job`, `metrics`, `snapshot`, then `end`."""
    await to_thread.run_sync(store.get, job_id)  # an unknown job is a 404 problem, not an empty stream
    return EventSourceResponse(stream(job_id, parse_last_event_id(last_event_id)), ping=HEARTBEAT_S, sep="\n",
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
