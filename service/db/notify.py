"""PostgreSQL LISTEN/NOTIFY: a committed change another process must see now, not at its next poll.

The API notifies in the transaction that makes the change (PostgreSQL delivers a NOTIFY only on commit, so a
listener never hears of a change that rolled back); a worker listens on its own autocommit connection,
outside SQLAlchemy's pool. Notifications are a fast path only: every listener also polls the rows, since
one that was not connected at the moment of the commit never receives it.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.db.engine import libpq_url
from service.settings import get_settings

log = logging.getLogger(__name__)

CANCEL = "ganserve_job_cancel"   # payload: the job id; sent when a running job's cancel is asked
# payload: the job id; sent by triggers (migration 0004) when what an event stream shows of a job changes
JOB_EVENT = "ganserve_job_event"


def notify(session: Session, channel: str, payload: str) -> None:
    """Send `payload` on `channel` when the session's transaction commits."""
    session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


class Listener:
    """LISTEN on one channel; wait() returns the payloads that arrive. Reconnects after a database outage,
    at most once per `retry_s`. `name` is the connection's application_name (seen in pg_stat_activity)."""

    def __init__(self, channel: str, name: str = "ganserve-listener", retry_s: float = 2.0) -> None:
        self.channel, self.name, self.retry_s = channel, name, retry_s
        self._conn: psycopg.Connection | None = None
        self._next_try = 0.0

    def _connect(self) -> psycopg.Connection | None:
        if self._conn is None and time.monotonic() >= self._next_try:
            self._next_try = time.monotonic() + self.retry_s
            conn = None
            try:
                # Bounded everywhere: a stuck server must not hold the job's end (the thread is joined then).
                # Keepalives: a connection whose server vanished is noticed, not waited on for ever.
                conn = psycopg.connect(libpq_url(get_settings().database_url), autocommit=True, connect_timeout=2,
                                       application_name=self.name, options="-c statement_timeout=2000",
                                       keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=2)
                conn.execute(f'LISTEN "{self.channel}"')             # a constant of this module, not input
                self._conn, conn = conn, None
            except psycopg.Error as exc:
                log.warning("cannot LISTEN on %s: %s", self.channel, type(exc).__name__)
            finally:
                if conn is not None:                                  # connected, but LISTEN failed
                    conn.close()
        return self._conn

    def wait(self, seconds: float, stop: threading.Event) -> list[str]:
        """Payloads received within `seconds` (returning at the first); [] when the wait ran out, `stop` was
        set, or the database is unreachable (then this just sleeps)."""
        conn = self._connect()
        if conn is None:
            stop.wait(seconds)
            return []
        try:
            return [n.payload for n in conn.notifies(timeout=max(seconds, 0.0), stop_after=1)]
        except psycopg.Error as exc:
            log.warning("LISTEN on %s interrupted: %s", self.channel, type(exc).__name__)
            self.close()
            return []

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


__all__ = ["CANCEL", "JOB_EVENT", "Listener", "notify"]
