"""Blobs are stored in chunks (no bytea value near PostgreSQL's 1 GB limit) and read back whole and verified."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select

from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import BlobChunk
from service.settings import get_settings


def test_a_blob_larger_than_a_chunk_is_split_and_read_back_whole(stack: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "blob_chunk_bytes", 1000)
    data = os.urandom(3500)
    with session_scope() as session:
        digest = blobs.put(session, "tests/chunked", data)
    with session_scope() as session:
        sizes = session.execute(select(BlobChunk.seq, func.octet_length(BlobChunk.data))
                                .where(BlobChunk.key == "tests/chunked").order_by(BlobChunk.seq)).all()
        assert [tuple(row) for row in sizes] == [(0, 1000), (1, 1000), (2, 1000), (3, 500)]
        assert blobs.get(session, "tests/chunked") == data
        assert blobs.get_verified(session, "tests/chunked", digest) == data
        blobs.put(session, "tests/chunked", b"short")  # a rewrite leaves no stale chunk behind
    with session_scope() as session:
        assert blobs.get(session, "tests/chunked") == b"short"
        blobs.delete(session, "tests/chunked")
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(BlobChunk).where(BlobChunk.key == "tests/chunked")) == 0


def test_a_chunk_that_fails_the_digest_is_never_returned_or_cached(stack: None) -> None:
    with session_scope() as session:
        blobs.put(session, "tests/corrupt", b"x" * 100)
        with pytest.raises(blobs.BlobCorrupt):
            blobs.get_verified(session, "tests/corrupt", "0" * 64)
        blobs.delete(session, "tests/corrupt")
    assert not (get_settings().resolved_cache_dir / ("0" * 64 + ".bin")).exists()
