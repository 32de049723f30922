"""Generators served with onnxruntime: sessions cached per model version, noise drawn per request."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from sqlalchemy import select

from service import blobs
from service.db import session_scope
from service.jobs import NotFound
from service.tables import ModelVersion

# A seed a client can give or be given: it must fit in a signed 64-bit header-friendly integer.
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    latent_dim: int
    noise: dict[str, Any]
    image_shape: tuple[int, int, int]
    dataset: str
    artifact_key: str
    artifact_sha256: str

    @classmethod
    def of(cls, row: ModelVersion) -> VersionInfo:
        c, h, w = row.image_shape
        return cls(row.name, row.version, row.latent_dim, dict(row.noise), (c, h, w), row.dataset,
                   row.artifact_key, row.artifact_sha256)


class LoadedModel:
    def __init__(self, info: VersionInfo, onnx_bytes: bytes) -> None:
        self.info = info
        options = ort.SessionOptions()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(onnx_bytes, options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.run(np.zeros((1, info.latent_dim), np.float32))  # warm up before the first request

    def run(self, z: np.ndarray) -> np.ndarray:
        """(n, latent_dim) float32 -> (n, C*H*W) float32 in [0, 1]."""
        return self.session.run(None, {self.input_name: z})[0]


def sample_noise(info: VersionInfo, n: int, seed: int) -> np.ndarray:
    """(n, latent_dim) float32 from the version's prior, drawn from a per-request generator (no global RNG)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    prior = info.noise
    if prior.get("kind") == "uniform":
        z = rng.uniform(prior["low"], prior["high"], size=(n, info.latent_dim))
    elif prior.get("kind") == "normal":
        z = rng.normal(0.0, prior.get("std", 1.0), size=(n, info.latent_dim))
    else:
        raise ValueError(f"unsupported noise prior {prior!r}")
    return z.astype(np.float32)


def new_seed() -> int:
    return int(np.random.default_rng().integers(0, MAX_SEED))


class Registry:
    """Loaded models by (name, version). A new version is loaded and warmed before anyone is sent to it."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str, version: int | None = None) -> VersionInfo:
        with session_scope() as session:
            query = select(ModelVersion).where(ModelVersion.name == name)
            query = query.where(ModelVersion.version == version) if version is not None else \
                query.order_by(ModelVersion.version.desc()).limit(1)
            row = session.scalar(query)
            if row is None:
                raise NotFound(self._not_found_message(session, name, version))
            return VersionInfo.of(row)

    @staticmethod
    def _not_found_message(session: Any, name: str, version: int | None) -> str:
        rows = session.execute(select(ModelVersion.name, ModelVersion.version)
                               .order_by(ModelVersion.name, ModelVersion.version)).all()
        known: dict[str, list[int]] = {}
        for row_name, row_version in rows:
            known.setdefault(row_name, []).append(row_version)
        if name in known:
            return f"model {name!r} has no version {version}; known versions: {known[name]}"
        listing = ", ".join(f"{n} (versions {v})" for n, v in known.items()) or "none yet: train one first"
        return f"unknown model {name!r}; known models: {listing}"

    def get(self, name: str, version: int | None = None) -> LoadedModel:
        info = self.resolve(name, version)
        key = (info.name, info.version)
        model = self._loaded.get(key)
        if model is not None:
            return model
        with self._lock:
            model = self._loaded.get(key)
            if model is None:
                with session_scope() as session:
                    onnx_bytes = blobs.get_verified(session, info.artifact_key, info.artifact_sha256)
                model = LoadedModel(info, onnx_bytes)
                self._loaded[key] = model
        return model


registry = Registry()
