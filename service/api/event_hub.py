"""One PostgreSQL LISTEN per API process, fanned out to every open event stream, and the caps on streams.

Triggers (migration 0004) NOTIFY JOB_EVENT with a job's id when its state, metrics, snapshots or Figure 1
data change. One thread per process listens and wakes the streams of that job; a stream then reads the
database once. A notification can be missed (the listener reconnecting after an outage), so a stream also
reads every settings.event_fallback_s.

Streams per client and per process are capped (settings.event_streams_per_client, event_streams_max):
beyond them a new stream is refused with 429 and Retry-After. The counts live on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from service.db.notify import JOB_EVENT, Listener
from service.errors import TooManyRequests
from service.settings import get_settings

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5


class EventHub:
    def __init__(self) -> None:
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.per_client: Counter[str] = Counter()

    @property
    def open_streams(self) -> int:
        return sum(self.per_client.values())

    def check(self, client: str) -> None:
        """429 when another stream would pass a cap. Called by the route, while a status can still be sent."""
        settings = get_settings()
        if self.per_client[client] >= settings.event_streams_per_client:
            raise TooManyRequests(f"at most {settings.event_streams_per_client} open event streams per client "
                                  f"(event_streams_per_client); close one or retry in {RETRY_AFTER_S} s",
                                  RETRY_AFTER_S)
        if self.open_streams >= settings.event_streams_max:
            raise TooManyRequests(f"this server has {settings.event_streams_max} open event streams "
                                  f"(event_streams_max); retry in {RETRY_AFTER_S} s", RETRY_AFTER_S)

    @contextmanager
    def slot(self, client: str) -> Iterator[None]:
        """A stream's place under the caps, held while it runs."""
        self.per_client[client] += 1
        try:
            yield
        finally:
            self.per_client[client] -= 1
            if not self.per_client[client]:
                del self.per_client[client]

    @contextmanager
    def subscribe(self, job_id: str) -> Iterator[asyncio.Event]:
        """An Event set whenever the job changes; the caller clears it before each read."""
        self._start()
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id, set())
                waiters.discard(entry)
                if not waiters:
                    self._waiters.pop(job_id, None)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._listen, name="event-hub", daemon=True)
                self._thread.start()

    def _listen(self) -> None:
        listener = Listener(JOB_EVENT, name="ganserve-events")
        try:
            while not self._stop.is_set():
                for job_id in listener.wait(1.0, self._stop):
                    self._wake(job_id)
        finally:
            listener.close()

    def _wake(self, job_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(job_id, ()))
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)


hub = EventHub()
