"""GET /jobs/{id}/events: a job's progress pushed as Server-Sent Events, read from PostgreSQL.

PostgreSQL is the source of truth: a stream reads it (short queries in a worker thread) when the job
changes, which the process hears through one LISTEN shared by every stream (service/api/event_hub.py), at
most every MIN_GAP_S, and every event_fallback_s regardless. A reconnecting browser sees exactly what the
database holds. Open streams are capped per client and per process (429 beyond). The stream ends when the
job does.

Events (all JSON):
  `job`      the job as GET /jobs/{id} returns it, sent when its status, progress or iteration changes
  `metrics`  a JSON list of new metric rows; `id:` is the last row's iteration (the resume cursor)
  `snapshot` {"iteration", "url"} of a new fixed-z sample grid
  `figure1`  toy-1d jobs only: the newest Figure 1 data (service/evaluation/figure1.py), when a newer one exists
  `end`      the job is finished and everything has been sent; the client should close
sse-starlette frames the events, sends a keep-alive comment every HEARTBEAT_S so proxies keep the connection
open, and stops the stream when the client disconnects or the server shuts down. On reconnect the browser
sends `Last-Event-ID` (the last metrics iteration it got): only later rows are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from service.api.event_hub import hub
from service.api.limits import RateLimit
from service.api.schemas import JobOut
from service.evaluation import collapse, figure1
from service.jobs import store
from service.settings import get_settings

router = APIRouter(prefix="/jobs", tags=["jobs"])

# A job writing many metric rows a second wakes its streams at most this often.
MIN_GAP_S = 0.5
HEARTBEAT_S = 15.0
# Plain newlines: the SSE spec allows \r\n too (sse-starlette's default), but "\n\n" between events is what
# line-oriented readers (our CLI, curl | grep) split on.
SEP = "\n"
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


def sse(event: str, data: Any, event_id: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(json.dumps(data, separators=(",", ":"), default=str), event=event,
                           id=str(event_id) if event_id is not None else None, sep=SEP)


def render(result: Poll, cursor: Cursor) -> list[ServerSentEvent]:
    """The events for one poll, advancing the cursor. Snapshot events carry no id, so the browser's
    Last-Event-ID stays the metrics cursor."""
    frames: list[ServerSentEvent] = []
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


async def stream(job_id: uuid.UUID, after: int, client: str) -> AsyncIterator[ServerSentEvent]:
    """The events until the job ends or MAX_STREAM_S pass. A client that goes away cancels this generator
    (sse-starlette), which gives back its slot and subscription."""
    cursor = Cursor(after=after)
    # On reconnect a snapshot at the cursor's own iteration may have been written after its metrics row:
    # resend from the cursor inclusive; the client ignores a snapshot iteration it already shows.
    snapshots_from = max(after, 0)
    with hub.slot(client), hub.subscribe(str(job_id)) as changed:
        yield ServerSentEvent(retry=RETRY_MS, sep=SEP)
        started = time.monotonic()
        while True:
            changed.clear()
            result = await to_thread.run_sync(poll, job_id, cursor, snapshots_from)
            for frame in render(result, cursor):
                yield frame
            if result.finished:
                yield sse("end", {"status": result.job.status})
                return
            if time.monotonic() - started >= MAX_STREAM_S:
                return
            await asyncio.sleep(MIN_GAP_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), get_settings().event_fallback_s)


@router.get("/{job_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(job_id: uuid.UUID, request: Request,
                     last_event_id: str | None = Header(default=None)) -> EventSourceResponse:
    """Server-Sent Events for one job until it finishes: `job`, `metrics`, `snapshot`, then `end`.
    429 with Retry-After beyond the open streams allowed per client or per server."""
    client = RateLimit.client(request.scope)
    hub.check(client)
    await to_thread.run_sync(store.get, job_id)  # an unknown job is a 404 problem, not an empty stream
    return EventSourceResponse(stream(job_id, parse_last_event_id(last_event_id), client), ping=HEARTBEAT_S,
                               sep=SEP, headers={"Cache-Control": "no-cache"})
