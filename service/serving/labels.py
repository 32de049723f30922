"""The class c of a conditional model's requests: `label` parsing and G's (z, c) input rows. Numpy only.

A conditional version records its class names (VersionInfo.label_names, from the training config); a label is
given as a class index or a class name, or "all" (/samples: one row per class). An unconditional version
refuses every label parameter. G's ONNX graph takes z and c; the server hands it one array [z | c] per row
(service/serving/registry.py splits it), so micro-batching stays one array per request.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from service.errors import InvalidParameter

ALL = "all"


class Labelled(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def label_names(self) -> tuple[str, ...]: ...


def allowed(info: Labelled, with_all: bool = False) -> str:
    names = info.label_names
    text = f"a class index 0..{len(names) - 1} or a class name ({', '.join(names)})"
    return text + (", or all (one row per class)" if with_all else "")


def parse(field: str, value: str | None, info: Labelled, with_all: bool = False) -> int | str | None:
    """The class index named by `value` (or "all" where allowed); None when absent. 422 naming `field`."""
    if value is None:
        return None
    if not info.label_names:
        raise InvalidParameter(field, f"model {info.name!r} is unconditional (trained without labels); omit "
                                      f"{field}, or train one with \"conditional\": true")
    if with_all and value == ALL:
        return ALL
    if value in info.label_names:
        return info.label_names.index(value)
    if value.isdigit() and int(value) < len(info.label_names):
        return int(value)
    raise InvalidParameter(field, f"must be {allowed(info, with_all)}; got {value[:80]!r}")


def one_hot(classes: np.ndarray, count: int) -> np.ndarray:
    """(n,) class indices -> (n, count) float32 one-hot."""
    return np.eye(count, dtype=np.float32)[classes]


def uniform_classes(seed: int, n: int, count: int) -> np.ndarray:
    """(n,) classes drawn uniformly from a stream of the request's seed apart from z's (row i: (seed, i))."""
    return np.random.Generator(np.random.PCG64([seed, 1])).integers(0, count, size=n)


def with_classes(z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """G's input rows [z | c] (float32); z alone for an unconditional model (c None)."""
    return z if c is None else np.ascontiguousarray(np.concatenate([z, c], axis=1), dtype=np.float32)


def class_path(first: int, last: int, steps: int, count: int) -> np.ndarray:
    """(steps, count) c moving linearly from the one-hot of `first` to that of `last` (ends exact)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    eye = np.eye(count, dtype=np.float32)
    return np.ascontiguousarray((1.0 - t) * eye[first] + t * eye[last], dtype=np.float32)


def names_of(info: Labelled, classes: np.ndarray) -> list[str]:
    return [info.label_names[int(k)] for k in classes]


def describe(info: Any) -> dict[str, Any]:
    """What a response says about a conditional model's classes."""
    return {"label_names": list(info.label_names)} if info.label_names else {}


__all__ = ["ALL", "allowed", "class_path", "describe", "names_of", "one_hot", "parse", "uniform_classes", "with_classes"]
