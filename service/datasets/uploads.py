"""POST /datasets, the work: a .zip or .tar.gz of PNG/JPEG files -> checked uint8 splits and their .npz bytes.

Pure (no database): service/datasets/store.py stores what `prepare` returns. Every problem is raised before
anything is stored, as InvalidParameter (422, naming the form field) or TooLarge (413, too much data).

The archive is never extracted to disk: members are read into memory by name. Defences:
- the archive itself is at most upload_max_bytes (413);
- at most upload_max_files members (413), whose declared sizes add up to at most upload_max_unpacked_bytes
  (413); a member that holds more than it declares is refused (422). A tar.gz is read as a stream through a
  counter that stops at the same limit, so no header (GNU long names included) can inflate past it;
- names that are absolute or contain `..` are refused (422), as are links and special files; directories,
  `__MACOSX/` and hidden files (.DS_Store, ._x) are skipped;
- each file must be a PNG or JPEG by content (not name) whose header says at most upload_max_image_pixels
  pixels, checked before it is decoded; a file that fails to decode is refused (422).
Images are sorted by member name, so the archive's order does not matter; the splits come from `seed`.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

from models.datasets import sha256_hex, stored
from service.errors import InvalidParameter, TooLarge
from service.settings import Settings

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
Color = Literal["rgb", "grayscale"]
MIN_SIDE = 4
MAX_FRACTION = 0.4
_PNG, _JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


@dataclass(frozen=True)
class UploadOptions:
    size: int | None = None  # resize every image to size x size (centre square crop first); None: keep
    color: Color = "rgb"
    seed: int = 0  # the split permutation
    valid_fraction: float = 0.1
    test_fraction: float = 0.1

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "color": self.color, "seed": self.seed,
                "valid_fraction": self.valid_fraction, "test_fraction": self.test_fraction}


@dataclass(frozen=True)
class Prepared:
    splits: dict[str, np.ndarray]  # uint8 (N, C, H, W) per split
    npz: bytes  # models.datasets.stored.encode(splits)
    sha256: str
    image_shape: tuple[int, int, int]
    archive_format: str
    filename: str

    @property
    def counts(self) -> dict[str, int]:
        return {s: len(a) for s, a in self.splits.items()}


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidParameter("name", f"must match [a-z0-9][a-z0-9_-]* (at most 64 characters); got {name[:80]!r}")
    return name


def check_options(options: UploadOptions, settings: Settings) -> None:
    if options.size is not None and not MIN_SIDE <= options.size <= settings.upload_max_side:
        raise InvalidParameter("size", f"must be an integer in {MIN_SIDE}..{settings.upload_max_side} "
                                       f"(pixels a side), or omitted to keep the images' own size; got {options.size}")
    for field, value in (("valid_fraction", options.valid_fraction), ("test_fraction", options.test_fraction)):
        if not 0.0 <= value <= MAX_FRACTION:
            raise InvalidParameter(field, f"must be a number in 0..{MAX_FRACTION}; got {value}")
    if not 0 <= options.seed < 2**63:
        raise InvalidParameter("seed", f"must be an integer in 0..2^63-1; got {options.seed}")


def _too_large(message: str) -> TooLarge:
    return TooLarge(f"archive: {message}")


def _check_member_name(name: str) -> None:
    parts = re.split(r"[\\/]", name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise InvalidParameter("archive", f"member {name[:200]!r} has an absolute path or '..'; refused")


def _skipped(name: str) -> bool:
    parts = [p for p in re.split(r"[\\/]", name) if p]
    return not parts or parts[0] == "__MACOSX" or parts[-1].startswith(".")


class _CappedReader(io.RawIOBase):
    """A read-only stream that raises 413 once more than `cap` bytes came out of `inner` (a gzip stream)."""

    def __init__(self, inner: Any, cap: int) -> None:
        self.inner, self.cap, self.total = inner, cap, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        self.total += len(data)
        if self.total > self.cap:
            raise _too_large(f"unpacks to more than upload_max_unpacked_bytes={self.cap} bytes")
        buffer[:len(data)] = data
        return len(data)


def _zip_members(data: bytes, settings: Settings) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        files = [i for i in infos if not i.is_dir()]
        if len(infos) > settings.upload_max_files:
            raise _too_large(f"{len(infos)} members, more than upload_max_files={settings.upload_max_files}")
        for info in infos:
            _check_member_name(info.filename)
        declared = sum(i.file_size for i in files)
        if declared > settings.upload_max_unpacked_bytes:
            raise _too_large(f"members declare {declared} bytes unpacked, more than "
                             f"upload_max_unpacked_bytes={settings.upload_max_unpacked_bytes}")
        for info in files:
            if _skipped(info.filename):
                continue
            try:
                with zf.open(info) as member:
                    # zipfile stops at the declared size and then checks the CRC, so a member that unpacks
                    # to more than it declares fails here instead of filling memory.
                    raw = member.read(info.file_size + 1)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                raise InvalidParameter("archive", f"member {info.filename!r} does not match its header (declares "
                                                  f"{info.file_size} bytes; {exc}); refused (a zip bomb?)") from exc
            if len(raw) != info.file_size:
                raise InvalidParameter("archive", f"member {info.filename!r} holds {len(raw)} bytes but declares "
                                                  f"{info.file_size}; refused (a zip bomb?)")
            yield info.filename, raw


def _tar_members(data: bytes, settings: Settings) -> Iterator[tuple[str, bytes]]:
    stream = _CappedReader(gzip.GzipFile(fileobj=io.BytesIO(data)), settings.upload_max_unpacked_bytes)
    count = declared = 0
    with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|") as tar:
        for member in tar:
            count += 1
            if count > settings.upload_max_files:
                raise _too_large(f"more than upload_max_files={settings.upload_max_files} members")
            _check_member_name(member.name)
            if member.isdir():
                continue
            if not member.isfile():
                raise InvalidParameter("archive", f"member {member.name!r} is a link or special file; only "
                                                  "regular files (images) and folders are allowed")
            declared += member.size
            if declared > settings.upload_max_unpacked_bytes:
                raise _too_large(f"members declare more than upload_max_unpacked_bytes="
                                 f"{settings.upload_max_unpacked_bytes} bytes unpacked")
            handle = tar.extractfile(member)
            raw = handle.read() if handle is not None else b""
            if len(raw) != member.size:
                raise InvalidParameter("archive", f"member {member.name!r} is truncated")
            if not _skipped(member.name):
                yield member.name, raw


def read_archive(data: bytes, filename: str, settings: Settings) -> tuple[str, list[tuple[str, bytes]]]:
    """("zip" | "tar.gz", [(member name, bytes)] sorted by name) — by content, whatever the file is called."""
    try:
        if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
            return "zip", sorted(_zip_members(data, settings))
        if data[:2] == b"\x1f\x8b":
            return "tar.gz", sorted(_tar_members(data, settings))
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, RuntimeError,
            NotImplementedError, ValueError) as exc:
        if isinstance(exc, InvalidParameter):
            raise
        raise InvalidParameter("archive", f"{filename!r} is not a readable archive: {type(exc).__name__}: "
                                          f"{exc}") from exc
    raise InvalidParameter("archive", f"{filename!r} is neither a .zip nor a .tar.gz archive")


def decode_image(name: str, raw: bytes, options: UploadOptions, settings: Settings) -> np.ndarray:
    """(H, W, C) uint8 of one PNG/JPEG member, converted and resized as asked."""
    if not raw.startswith((_PNG, _JPEG)):
        raise InvalidParameter("archive", f"{name!r} is not a PNG or JPEG image")
    try:
        with Image.open(io.BytesIO(raw)) as opened:
            width, height = opened.size  # from the header: nothing decoded yet
            if width * height > settings.upload_max_image_pixels:
                raise InvalidParameter("archive", f"{name!r} is {width}x{height}, more than "
                                                  f"upload_max_image_pixels={settings.upload_max_image_pixels}")
            opened.load()
            upright = ImageOps.exif_transpose(opened)  # photos the right way up
            img = upright.convert("L" if options.color == "grayscale" else "RGB")
    except InvalidParameter:
        raise
    except Exception as exc:
        raise InvalidParameter("archive", f"{name!r} does not decode as an image: {exc}") from exc
    if options.size is not None:
        img = ImageOps.fit(img, (options.size, options.size), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def make_splits(images: np.ndarray, options: UploadOptions) -> dict[str, np.ndarray]:
    """(N, C, H, W) -> train/valid/test by one permutation from the seed, made once and stored."""
    n = len(images)
    order = np.random.default_rng(options.seed).permutation(n)
    n_valid = max(1, round(n * options.valid_fraction)) if options.valid_fraction > 0 else 0
    n_test = max(1, round(n * options.test_fraction)) if options.test_fraction > 0 else 0
    picks = {"valid": order[:n_valid], "test": order[n_valid:n_valid + n_test], "train": order[n_valid + n_test:]}
    return {s: np.ascontiguousarray(images[np.sort(picks[s])]) for s in stored.SPLITS}


def prepare(data: bytes, filename: str, options: UploadOptions, settings: Settings) -> Prepared:
    """Everything POST /datasets checks and computes, in order; raises before anything is stored."""
    check_options(options, settings)
    if len(data) > settings.upload_max_bytes:
        raise _too_large(f"{len(data)} bytes, more than upload_max_bytes={settings.upload_max_bytes}")
    kind, members = read_archive(data, filename, settings)
    if len(members) < settings.upload_min_images:
        raise InvalidParameter("archive", f"{len(members)} image(s); at least upload_min_images="
                                          f"{settings.upload_min_images} are needed")
    decoded: list[np.ndarray] = []
    for name, raw in members:
        img = decode_image(name, raw, options, settings)
        if decoded and img.shape != decoded[0].shape:
            (h0, w0, _), (h, w, _) = decoded[0].shape, img.shape
            raise InvalidParameter("size", f"images have different sizes ({w0}x{h0} in {members[0][0]!r}, "
                                           f"{w}x{h} in {name!r}); give size=N to resize them all to N x N")
        if not decoded:
            h, w, c = img.shape
            if min(h, w) < MIN_SIDE or max(h, w) > settings.upload_max_side:
                raise InvalidParameter("size", f"images are {w}x{h}; sides must be {MIN_SIDE}.."
                                               f"{settings.upload_max_side}: give size=N to resize them")
            if len(members) * h * w * c > settings.upload_max_array_bytes:
                raise _too_large(f"{len(members)} images of {w}x{h}x{c} make more than upload_max_array_bytes="
                                 f"{settings.upload_max_array_bytes} bytes; give a smaller size")
        decoded.append(img)
    images = np.stack(decoded).transpose(0, 3, 1, 2)  # (N, C, H, W)
    splits = make_splits(images, options)
    if len(splits["train"]) < 1:
        raise InvalidParameter("valid_fraction", "nothing would be left to train on")
    npz = stored.encode(splits)
    c, h, w = images.shape[1:]
    return Prepared(splits, npz, sha256_hex(npz), (int(c), int(h), int(w)), kind, filename)


__all__ = ["Prepared", "UploadOptions", "check_name", "prepare", "read_archive"]
