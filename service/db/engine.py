"""Engine and sessions. One engine per process, created lazily from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from service.settings import get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlalchemy_url(url: str) -> str:
    """Accept plain postgresql:// URLs (compose, pgserver) and pick the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def libpq_url(url: str) -> str:
    """The inverse for clients that speak libpq URLs (psycopg.connect): no SQLAlchemy driver part."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    url = get_settings().database_url
    if not url:
        raise RuntimeError("GANSERVE_DATABASE_URL is not set; `ganserve up` starts an embedded PostgreSQL")
    # pool_pre_ping: after a PostgreSQL restart, stale connections are replaced instead of failing a request.
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=10, max_overflow=10,
                         connect_args={"connect_timeout": 5})


@lru_cache(maxsize=1)
def _sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A transaction: commit on success, roll back on any exception."""
    session = _sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def alembic_config():  # type: ignore[no-untyped-def]
    from alembic.config import Config  # lazy: only processes that migrate load alembic

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate() -> None:
    """`alembic upgrade head`, run by every process that starts (API, worker); idempotent."""
    from alembic import command  # lazy: only processes that migrate load alembic

    with get_engine().begin() as conn:
        # Two processes starting together must not both create the tables: serialize on an advisory lock.
        conn.execute(text("SELECT pg_advisory_xact_lock(7291001)"))
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
