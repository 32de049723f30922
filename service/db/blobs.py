"""The artifact store: bytes in PostgreSQL, so a worker and an API on different machines share them.

Readers keep a local cache named by sha256 and verify every byte they serve against the registered digest.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from service.db.tables import Blob
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
    stmt = insert(Blob).values(key=key, sha256=digest, size=len(data), content_type=content_type, data=data)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Blob.key],
        set_={"sha256": digest, "size": len(data), "content_type": content_type, "data": data}))
    return digest


def get(session: Session, key: str) -> bytes:
    data = session.scalar(select(Blob.data).where(Blob.key == key))
    if data is None:
        raise BlobMissing(key)
    return bytes(data)


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
    data = get(session, key)
    if sha256_of(data) != sha256:
        raise BlobCorrupt(f"artifact {key} does not match its registered sha256 {sha256}")
    _write_atomic(cache, data)
    return cache


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
