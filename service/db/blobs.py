"""The artifact store: bytes in PostgreSQL, so a worker and an API on different machines share them.

A blob is a `blobs` row (key, sha256, size) and its bytes in `blob_chunks` rows of settings.blob_chunk_bytes:
a bytea value holds at most 1 GB, and a large checkpoint is written and read one chunk at a time. Readers
keep a local cache named by sha256 and verify every byte they serve against the registered digest.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from service.db.tables import Blob, BlobChunk
from service.settings import get_settings


class BlobMissing(LookupError):
    pass


class BlobCorrupt(RuntimeError):
    pass


CHECKPOINTS = "checkpoints/"   # a training job's resumable state lives under this prefix, named by its id


def checkpoint_key(job_id: uuid.UUID) -> str:
    """The job's latest checkpoint (worker/checkpoint.py), overwritten in place."""
    return f"{CHECKPOINTS}{job_id}.pt"


def best_key(job_id: uuid.UUID) -> str:
    """G's weights at the job's best validation score so far (keep "best")."""
    return f"{CHECKPOINTS}{job_id}-best.pt"


def checkpoint_job(key: str) -> uuid.UUID | None:
    """The job a key under CHECKPOINTS belongs to, or None for any other key."""
    if not key.startswith(CHECKPOINTS):
        return None
    name = key[len(CHECKPOINTS):].removesuffix(".pt").removesuffix("-best")
    try:
        return uuid.UUID(name)
    except ValueError:
        return None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(session: Session, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
    """Insert or replace `key` inside the caller's transaction (so it commits with the caller's rows)."""
    digest = sha256_of(data)
    stmt = insert(Blob).values(key=key, sha256=digest, size=len(data), content_type=content_type)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Blob.key], set_={"sha256": digest, "size": len(data), "content_type": content_type}))
    session.execute(sql_delete(BlobChunk).where(BlobChunk.key == key))
    step = get_settings().blob_chunk_bytes
    view = memoryview(data)
    for seq, start in enumerate(range(0, max(len(data), 1), step)):
        session.execute(insert(BlobChunk).values(key=key, seq=seq, data=bytes(view[start:start + step])))
    return digest


def chunks(session: Session, key: str) -> Iterator[bytes]:
    """The bytes of `key`, one chunk per query, in order (never the whole blob in one value)."""
    if session.scalar(select(Blob.key).where(Blob.key == key)) is None:
        raise BlobMissing(key)
    seq = 0
    while (data := session.scalar(select(BlobChunk.data).where(BlobChunk.key == key, BlobChunk.seq == seq))) \
            is not None:
        yield bytes(data)
        seq += 1


def get(session: Session, key: str) -> bytes:
    return b"".join(chunks(session, key))


def get_small(session: Session, keys: list[str]) -> dict[str, bytes]:
    """Several small blobs (snapshot figures) in one query; a key without bytes is left out."""
    found: dict[str, list[bytes]] = {}
    rows = session.execute(select(BlobChunk.key, BlobChunk.data).where(BlobChunk.key.in_(keys))
                           .order_by(BlobChunk.key, BlobChunk.seq))
    for key, data in rows:
        found.setdefault(key, []).append(bytes(data))
    return {key: b"".join(pieces) for key, pieces in found.items()}


def delete(session: Session, key: str) -> None:
    blob = session.get(Blob, key)
    if blob is not None:
        session.delete(blob)


def get_verified(session: Session, key: str, sha256: str) -> bytes:
    """The bytes of `key`, from the local cache when present, checked against `sha256` either way."""
    return verified_path(session, key, sha256).read_bytes()


def verified_path(session: Session, key: str, sha256: str) -> Path:
    """The local cache file of `key` (fetched on a miss), its bytes checked against `sha256`: a file to stream."""
    cache = get_settings().resolved_cache_dir / f"{sha256}.bin"
    if cache.exists():
        if _file_sha256(cache) == sha256:
            return cache
        cache.unlink(missing_ok=True)  # a corrupt cache entry is dropped and fetched again
    _write_verified(cache, chunks(session, key), key, sha256)
    return cache


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write_verified(path: Path, pieces: Iterator[bytes], key: str, sha256: str) -> None:
    """Stream `pieces` to `path` (atomically), hashing on the way; nothing is left behind on a mismatch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in pieces:
                digest.update(piece)
                f.write(piece)
        if digest.hexdigest() != sha256:
            raise BlobCorrupt(f"artifact {key} does not match its registered sha256 {sha256}")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
