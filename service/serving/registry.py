"""Generators served with onnxruntime: one warmed session per model version, and the registry that finds them.

Requests without a version are served by the latest version this process knows. That pointer is re-read from
the database at most every `latest_refresh_ms`, in the background: a newer version is downloaded, loaded and
warmed while the old one keeps answering, and only then does the pointer move, so no request sees a gap and
the hot path never touches the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import ModelVersion
from service.errors import NotFound
from service.serving.batching import MicroBatcher
from service.serving.runtime import providers, usable_cores
from service.settings import Settings, get_settings
from service.telemetry.metrics import observe_inference
from service.versions import refs
from service.versions.refs import VersionRef

log = logging.getLogger(__name__)


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
    label_names: tuple[str, ...] = ()  # a conditional G's classes (its graph takes z and c); () otherwise
    encoder: tuple[str, str] | None = None  # (blob key, sha256) of E's graph, when trained

    @classmethod
    def of(cls, row: ModelVersion) -> VersionInfo:
        c, h, w = row.image_shape
        config = row.config or {}
        labels = tuple(config.get("label_names") or ()) if config.get("conditional") else ()
        encoder = (row.encoder["key"], row.encoder["sha256"]) if row.encoder else None
        return cls(row.name, row.version, row.latent_dim, dict(row.noise), (c, h, w), row.dataset,
                   row.artifact_key, row.artifact_sha256, labels, encoder)


def make_session(onnx_bytes: bytes, settings: Settings) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.inference_threads or max(1, usable_cores() // 2)
    options.inter_op_num_threads = 1
    # Idle pool threads would otherwise spin, stealing the cores that parse HTTP and encode PNGs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chosen = providers()
    try:
        return ort.InferenceSession(onnx_bytes, options, providers=chosen)
    except Exception:  # onnxruntime-gpu without a usable GPU/driver: serve on the CPU
        if chosen == ["CPUExecutionProvider"]:
            raise
        log.warning("CUDA session failed; falling back to the CPU", exc_info=True)
        return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


class LoadedModel:
    """A warmed session and its micro-batcher (and the encoder's session, when the version has one)."""

    def __init__(self, info: VersionInfo, onnx_bytes: bytes, settings: Settings | None = None,
                 encoder_bytes: bytes | None = None) -> None:
        settings = settings or get_settings()
        self.info = info
        self.size = len(onnx_bytes)  # the weights dominate a session's memory
        self.session = make_session(onnx_bytes, settings)
        self.input_name = self.session.get_inputs()[0].name
        self.encoder = make_session(encoder_bytes, settings) if encoder_bytes is not None else None
        self.batcher = MicroBatcher(self.run, max_samples=settings.batch_max_samples,
                                    wait_ms=settings.batch_wait_ms, enabled=settings.batching,
                                    name=f"{info.name}-v{info.version}", on_batch=observe_inference)
        # Warm up before the first request: the first runs allocate arenas and pick kernels.
        for rows in (1, min(64, settings.batch_max_samples)):
            self.run(np.zeros((rows, info.latent_dim + len(info.label_names)), np.float32))

    def run(self, z: np.ndarray) -> np.ndarray:
        """(n, latent_dim) float32 -> (n, C*H*W) float32 in [0, 1], on the calling thread. A conditional
        model's rows are [z | c] (service/serving/labels.py), fed to its graph's inputs z and c."""
        if not self.info.label_names:
            return self.session.run(None, {self.input_name: z})[0]
        latent = self.info.latent_dim
        return self.session.run(None, {"z": np.ascontiguousarray(z[:, :latent]),
                                       "c": np.ascontiguousarray(z[:, latent:])})[0]

    def encode(self, x: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        """E(x [, c]): (n, C*H*W) float32 in [0, 1] (and (n, classes) one-hot) -> z (n, latent_dim), on the
        calling thread. Only for a version with an encoder."""
        assert self.encoder is not None
        feeds = {"x": np.ascontiguousarray(x, dtype=np.float32)}
        if c is not None:
            feeds["c"] = np.ascontiguousarray(c, dtype=np.float32)
        return self.encoder.run(None, feeds)[0]

    def generate(self, z: np.ndarray, then: Any = None, cheap: bool = True) -> Future[Any]:
        """Micro-batched run of z's rows, then `then(x)` off the event loop (`cheap`: may share the
        inference thread when nothing else waits for it)."""
        return self.batcher.submit(np.ascontiguousarray(z, dtype=np.float32), then, cheap)

    async def respond(self, z: np.ndarray, then: Any = None, cheap: bool = True) -> Any:
        """`then(x)` of z's rows for one request, awaited on the event loop: batched, or run right there when
        the request is alone (service/serving/batching.py's MicroBatcher.result)."""
        return await self.batcher.result(np.ascontiguousarray(z, dtype=np.float32), then, cheap)


class Registry:
    """Loaded models by (name, version), least recently used evicted beyond `max_loaded_models`."""

    def __init__(self) -> None:
        self._models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._latest: dict[str, tuple[LoadedModel, float]] = {}  # name -> (model, last checked, monotonic)
        self._lock = threading.Lock()
        self._load_locks: dict[tuple[str, int], threading.Lock] = {}
        self._refreshing: set[str] = set()

    def cached(self, name: str, version: int | None = None) -> LoadedModel | None:
        """The model if it is loaded, without blocking or touching the database (the request fast path)."""
        if version is None:
            entry = self._latest.get(name)
            if entry is None:
                return None
            model, checked = entry
            if time.monotonic() - checked > get_settings().latest_refresh_ms / 1000.0:
                self._refresh_in_background(name)
            return model
        with self._lock:
            pinned = self._models.get((name, version))
            if pinned is not None:
                self._models.move_to_end((name, version))
        return pinned

    def get(self, name: str, version: VersionRef = None) -> LoadedModel:
        """Blocking: resolve in the database and load on a miss. Raises NotFound listing the known models.
        An alias is resolved every time (it may have moved); the version it names is cached like any."""
        if isinstance(version, str):
            info = self.resolve(name, version)
            return self.cached(name, info.version) or self._load(info)
        model = self.cached(name, version)
        if model is not None:
            return model
        model = self._load(self.resolve(name, version))
        if version is None:
            self._set_latest(name, model)
        return model

    def refresh(self, name: str) -> LoadedModel | None:
        """Re-read the latest version of `name`; load and warm it before it becomes the latest."""
        try:
            info = self.resolve(name, None)
        except NotFound:
            self._latest.pop(name, None)  # the model is gone: later requests get the 404
            return None
        current = self._latest.get(name)
        model = current[0] if current and current[0].info == info else self._load(info)
        self._set_latest(name, model)
        return model

    def resolve(self, name: str, version: VersionRef = None) -> VersionInfo:
        """The version a number, an alias or None (the latest) names; NotFound lists what exists."""
        with session_scope() as session:
            return VersionInfo.of(refs.find(session, name, version))

    def forget(self, name: str, version: int) -> None:
        """Drop a retired version from this process (other processes drop it as their latest moves on)."""
        with self._lock:
            self._models.pop((name, version), None)
        entry = self._latest.get(name)
        if entry is not None and entry[0].info.version == version:
            self._latest.pop(name, None)

    def _set_latest(self, name: str, model: LoadedModel) -> None:
        self._latest[name] = (model, time.monotonic())  # one dict store: readers see old or new, never neither

    def _refresh_in_background(self, name: str) -> None:
        with self._lock:
            if name in self._refreshing:
                return
            self._refreshing.add(name)

        def work() -> None:
            try:
                self.refresh(name)
            except Exception as exc:  # noqa: BLE001 - database down, artifact corrupt...: keep serving
                log.warning("refreshing the latest version of %r failed (%s: %s); serving the loaded one",
                            name, type(exc).__name__, exc)
                entry = self._latest.get(name)
                if entry is not None:
                    self._set_latest(name, entry[0])  # retry after another refresh interval
            finally:
                with self._lock:
                    self._refreshing.discard(name)

        threading.Thread(target=work, name=f"refresh-{name}", daemon=True).start()

    def _load(self, info: VersionInfo) -> LoadedModel:
        key = (info.name, info.version)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                return model
            key_lock = self._load_locks.setdefault(key, threading.Lock())
        with key_lock:  # one download and warm-up per version, however many requests wait for it
            with self._lock:
                model = self._models.get(key)
            if model is None:
                with session_scope() as session:
                    onnx_bytes = blobs.get_verified(session, info.artifact_key, info.artifact_sha256)
                    encoder = blobs.get_verified(session, *info.encoder) if info.encoder else None
                model = LoadedModel(info, onnx_bytes, encoder_bytes=encoder)
                with self._lock:
                    self._models[key] = model
                    self._evict(keep=key)
        return model

    def _evict(self, keep: tuple[str, int]) -> None:
        """Drop the least recently used versions beyond the limits (max_loaded_models, max_loaded_model_bytes),
        never one a latest pointer uses, nor `keep` (just loaded)."""
        settings = get_settings()
        pinned = {(m.info.name, m.info.version) for m, _ in self._latest.values()} | {keep}
        total = sum(m.size for m in self._models.values())
        for key in [k for k in self._models if k not in pinned]:
            if len(self._models) <= max(1, settings.max_loaded_models) and total <= settings.max_loaded_model_bytes:
                break
            total -= self._models.pop(key).size  # requests holding it finish; its batcher thread idles out

    @property
    def loaded_bytes(self) -> int:
        with self._lock:
            return sum(m.size for m in self._models.values())


registry = Registry()
