"""The one Settings class. Every tunable of the service and the workers is read here, once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.budget import Budget


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
    # /metrics names models and job ids: true makes it need a key too (Prometheus: bearer_token).
    metrics_requires_key: bool = False

    # Limits: request bodies above max_body_bytes → 413; sampling endpoints allow each client a burst of
    # sample_burst requests refilled at sample_rate_per_s (0 disables) → 429 beyond it.
    max_body_bytes: int = 1 << 20
    sample_rate_per_s: float = 20.0
    sample_burst: int = 40
    # Admission by cost (service/serving/admission.py) on the endpoints that run a model: a request costs
    # n × output values (+ n × training rows with neighbors). Each client's bucket holds sample_cost_burst
    # units refilled at sample_cost_per_s (0 disables) → 429 beyond it; an n=1024 MNIST request with
    # neighbours (~52 M units) fits one burst. Render work in flight across clients is at most render_max_cost
    # (→ 503). A response larger than max_response_bytes is refused (422 naming n or steps).
    sample_cost_per_s: float = 20_000_000.0
    sample_cost_burst: int = 64_000_000
    render_max_cost: int = 256_000_000
    max_response_bytes: int = 256 << 20
    # Event streams (GET /jobs/{id}/events): open at once per client and per API process (429 beyond); a
    # stream re-reads its job at least every event_fallback_s even when no notification arrives.
    event_streams_per_client: int = 16
    event_streams_max: int = 256
    event_fallback_s: float = 5.0
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
    # Model versions kept loaded (least recently used evicted) up to this many and this many artifact bytes;
    # the latest version of each name stays.
    max_loaded_models: int = 8
    max_loaded_model_bytes: int = 1 << 30
    # onnxruntime intra-op threads per session; 0 = half the usable cores (at least 1): the other half parse
    # HTTP and encode PNGs concurrently, and a lone request on 2 cores gains little from a second thread.
    inference_threads: int = 0
    # Requests without `version` are served by the latest version known to this process, re-read from the
    # database at most this often; a newer version is loaded and warmed in the background before switching.
    latest_refresh_ms: float = 1000.0
    # Nearest training images: rows of the training set per matrix product (bounds memory at n x chunk).
    neighbors_chunk_rows: int = 8192
    # Training sets kept for that search (float32, least recently used evicted) up to this many bytes.
    neighbors_cache_bytes: int = 512 << 20
    # zlib level of generated PNGs: 1 is ~3x cheaper than 6 on sample grids and only slightly larger.
    png_compress_level: int = 1
    cors_origins: list[str] = Field(default_factory=list)

    # Evaluation: queue the Parzen score (~2-3 s of CPU on MNIST) of every version a training job
    # registers. Tests that train many throwaway models turn it off to leave the cores to training.
    parzen_after_training: bool = True
    # Likewise the sample-quality scores (GET /scores: FD, KID, precision/recall, classes) of every version. The
    # first version of a dataset also queues that dataset's classifier (a few CPU minutes on MNIST).
    scores_after_training: bool = True
    # The classifier job: epochs over the training split less its last classifier_held_out rows (the best
    # epoch on those is kept); classifier_train_examples > 0 trains on that many rows only (quick tests).
    classifier_epochs: int = 6
    classifier_held_out: int = 5000
    classifier_train_examples: int = 0
    # Seed sweeps (POST /jobs with "seeds"): at most this many seeds, i.e. training jobs, per request.
    max_sweep_seeds: int = 16

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

    # A training job's budget (models/budget.py), checked at POST /jobs: 422 naming the field beyond it. The
    # paper's CIFAR-10 nets (~127 M parameters, a ~1.5 GB checkpoint with Adam) fit; blobs are stored in
    # chunks (service/db/blobs.py), so a checkpoint may pass PostgreSQL's 1 GB bytea limit. The minimum
    # intervals keep a job from writing a metrics row, a sample grid or a checkpoint per iteration.
    max_parameters: int = 150_000_000
    # Bytes per stored blob chunk (service/db/blobs.py): a bytea value holds at most 1 GB.
    blob_chunk_bytes: int = 8 << 20
    max_checkpoint_bytes: int = 2 << 30
    min_log_every: int = 10
    min_snapshot_every: int = 10
    min_checkpoint_seconds: float = 1.0

    @property
    def budget(self) -> Budget:
        return Budget(self.max_parameters, self.max_checkpoint_bytes, self.min_log_every,
                      self.min_snapshot_every, self.min_checkpoint_seconds)

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
