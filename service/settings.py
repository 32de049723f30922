"""The one Settings class. Every tunable of the service and the workers is read here, once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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

    # Auth: mutating endpoints need this key (X-API-Key or Bearer); empty = no key required.
    api_key: str = ""

    # Celery: a job's message stays invisible to other workers this long before Redis redelivers it;
    # it must exceed the longest job, or a running job would be handed to a second worker.
    visibility_timeout_s: int = 7 * 24 * 3600
    worker_concurrency: int = 1
    # Heartbeat/progress writes at most this often; cancel requests are seen within this delay.
    heartbeat_s: float = 2.0
    max_attempts: int = 3

    # Serving.
    max_samples: int = 1024
    cors_origins: list[str] = Field(default_factory=list)

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
