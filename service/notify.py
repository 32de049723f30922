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

from service.settings import get_settings

log = logging.getLogger(__name__)

CANCEL = "ganserve_job_cancel"   # payload: the job id; sent when a running job's cancel is asked


def notify(session: Session, channel: str, payload: str) -> None:
    """Send `payload` on `channel` when the session's transaction commits."""
    session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


def _libpq_url(url: str) -> str:
    """psycopg connects with libpq URLs: postgresql+psycopg:// (an SQLAlchemy URL) loses its driver part."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class Listener:
    """LISTEN on one channel; wait() returns the payloads that arrive. Reconnects after a database outage,
    at most once per `retry_s`."""

    def __init__(self, channel: str, retry_s: float = 2.0) -> None:
        self.channel, self.retry_s = channel, retry_s
        self._conn: psycopg.Connection | None = None
        self._next_try = 0.0

    def _connect(self) -> psycopg.Connection | None:
        if self._conn is None and time.monotonic() >= self._next_try:
            self._next_try = time.monotonic() + self.retry_s
            try:
                conn = psycopg.connect(_libpq_url(get_settings().database_url), autocommit=True, connect_timeout=2)
                conn.execute(f'LISTEN "{self.channel}"')             # a constant of this module, not input
                self._conn = conn
            except psycopg.Error as exc:
                log.warning("cannot LISTEN on %s: %s", self.channel, type(exc).__name__)
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


__all__ = ["CANCEL", "Listener", "notify"]
