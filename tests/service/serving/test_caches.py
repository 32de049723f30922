"""The API process's caches are bounded in bytes: training sets for the neighbour search, loaded models."""

from __future__ import annotations

from typing import Any

import pytest

from service.serving import neighbors
from service.serving.registry import registry
from service.settings import get_settings
from tests.factories import register_model


def test_training_sets_are_evicted_beyond_their_byte_budget(stack: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "neighbors_cache_bytes", 1)
    neighbors.training_set("toy-ring")
    neighbors.training_set("toy-grid")
    assert neighbors.cached_bytes() <= neighbors.training_set("toy-grid")[0].nbytes * 2  # the newest alone
    assert "toy-ring" not in neighbors._norms
    monkeypatch.setattr(get_settings(), "neighbors_cache_bytes", 1 << 30)
    neighbors.training_set("toy-ring")
    assert {"toy-ring", "toy-grid"} <= set(neighbors._norms)


def test_loaded_models_are_evicted_beyond_their_byte_budget(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = register_model("cache-bytes"), register_model("cache-bytes")
    monkeypatch.setattr(get_settings(), "max_loaded_model_bytes", 1)
    for reg in (first, second):
        assert client.get("/samples", params={"model": "cache-bytes", "version": reg.version, "n": 1}).status_code == 200
    loaded = {key for key in registry._models if key[0] == "cache-bytes"}
    assert ("cache-bytes", first.version) not in loaded and ("cache-bytes", second.version) in loaded
