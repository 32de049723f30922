"""The one Settings class. Every tunable of the service and the workers is read here, once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GANSERVE_", env_file=None, extra="ignore")

    # Where local state lives (embedded PostgreSQL/Redis, caches) when nothing else is configured.
    home: Path = Field(default=Path.home() / ".ganserve")
    # Empty URLs mean "start the embedded PostgreSQL / Redis under `home`" (ganserve up, tests).
    database_url: str = ""
    redis_url: str = ""
    data_dir: Path | None = None
    # Local cache of artifacts fetched from the database, verified by sha256 before use.
    cache_dir: Path | None = None

    # Where the `ganserve` client commands (train, jobs, sample, ...) find the API.
    url: str = "http://127.0.0.1:8000"

    # Auth: mutating endpoints need a key (X-API-Key or Bearer). SecretStr: never shown by repr or logs.
    api_key: SecretStr = SecretStr("")

    # Celery: a job's message stays invisible to other workers this long before Redis redelivers it;
    # it must exceed the longest job, or a running job would be handed to a second worker.
    visibility_timeout_s: int = 7 * 24 * 3600
    worker_concurrency: int = 1
    # Heartbeat/progress writes at most this often; cancel requests are seen within this delay.
    heartbeat_s: float = 2.0
    max_attempts: int = 3
    # A running job whose heartbeat is older than this is presumed dead: the reconciler re-dispatches it
    # and another worker may claim it (resuming from its checkpoint). Must be several heartbeats long.
    lease_timeout_s: float = 30.0
    # Wall time a job may take from its first start (across attempts) before it is failed.
    job_time_limit_s: float = 24 * 3600.0
    # The reconciler (in every API process) runs this often; a `queued` job whose message is missing
    # from the broker is re-sent once it is this old (the grace covers commit-then-enqueue).
    reconcile_interval_s: float = 10.0
    reconcile_queued_after_s: float = 30.0

    # Auth. api_keys: sha256 hex digests of accepted keys (`ganserve hash-key`), each optionally prefixed by its
    # scope ("read:", "train:" (the default), "admin:"; service/keys.py); api_key: one plaintext key with every
    # scope (the laptop default, hashed at startup). No key configured = every mutating request is refused.
    api_keys: list[str] = Field(default_factory=list)
    read_requires_key: bool = False

    # Limits: request bodies above max_body_bytes → 413; sampling endpoints allow each client a burst of
    # sample_burst requests refilled at sample_rate_per_s (0 disables) → 429 beyond it.
    max_body_bytes: int = 1 << 20
    sample_rate_per_s: float = 20.0
    sample_burst: int = 40
    # Log lines as JSON objects (request and job ids included); false gives plain text for a terminal.
    json_logs: bool = True
    # The API writes INFO and DEBUG lines (one per request) in batches at most this many seconds apart, not one
    # write(2) each; warnings and errors at once (service/log_stream.py). 0: every line at once.
    log_flush_s: float = 0.2

    # Serving.
    max_samples: int = 1024
    max_interpolation_steps: int = 64
    # Micro-batching: concurrent requests for one model version share one onnxruntime run. A batch closes at
    # batch_max_samples rows or after batch_wait_ms; the wait is only spent when the previous batch served
    # several requests (so a lone client never pays it). A bounded batch keeps a pipeline going under load:
    # one batch runs while the previous one's PNGs are encoded; per-row GEMM cost is flat beyond ~64 rows.
    # The wait is short because the requests that arrive while a batch runs already form the next one: with
    # 16 clients asking n=1, 2 ms made batching no faster than none (-3 % to +4 %), 0.5 ms 12-22 % faster
    # (`ganserve bench serve`, 2026-11-24).
    batch_wait_ms: float = 0.5
    batch_max_samples: int = 256
    # False: every request runs the model on its own (the baseline the benchmark compares against).
    batching: bool = True
    # Model versions kept loaded (least recently used evicted); the latest version of each name stays.
    max_loaded_models: int = 8
    # onnxruntime intra-op threads per session; 0 = half the usable cores (at least 1): the other half parse
    # HTTP and encode PNGs concurrently, and a lone request on 2 cores gains little from a second thread.
    inference_threads: int = 0
    # Requests without `version` are served by the latest version known to this process, re-read from the
    # database at most this often; a newer version is loaded and warmed in the background before switching.
    latest_refresh_ms: float = 1000.0
    # Nearest training images: rows of the training set per matrix product (bounds memory at n x chunk).
    neighbors_chunk_rows: int = 8192
    # zlib level of generated PNGs: 1 is ~3x cheaper than 6 on sample grids and only slightly larger.
    png_compress_level: int = 1
    cors_origins: list[str] = Field(default_factory=list)

    # Evaluation: queue the Parzen score (~2-3 s of CPU on MNIST) of every version a training job
    # registers. Tests that train many throwaway models turn it off to leave the cores to training.
    parzen_after_training: bool = True

    # Uploaded datasets (POST /datasets, service/uploads.py). The archive (.zip or .tar.gz of PNG/JPEG files)
    # is at most upload_max_bytes; it may hold at most upload_max_files members whose sizes, declared and
    # actually read, add up to at most upload_max_unpacked_bytes (a zip bomb stops there); each image at most
    # upload_max_image_pixels before decoding, at most upload_max_side pixels a side after resizing; at least
    # upload_min_images images; the decoded uint8 array at most upload_max_array_bytes.
    upload_max_bytes: int = 64 << 20
    upload_max_files: int = 50_000
    upload_max_unpacked_bytes: int = 512 << 20
    upload_max_image_pixels: int = 4096 * 4096
    upload_max_side: int = 256
    upload_min_images: int = 20
    upload_max_array_bytes: int = 512 << 20

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir or self.home / "data"

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or self.home / "cache"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the environment once per process."""
    return Settings()
