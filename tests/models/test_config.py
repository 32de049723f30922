"""Training configs: presets, overrides, budgets."""

from __future__ import annotations

import pytest

from models.config import PRESETS, ConfigError, TrainConfig, resolve


def test_an_epoch_budget_becomes_iterations_of_the_presets_epoch() -> None:
    assert resolve("paper-mnist", epochs=3).iterations == 3 * 500                    # 50,000 / 100
    assert resolve("paper-mnist", epochs=3, batch_size=50).iterations == 3 * 1000
    assert resolve("paper-cifar10-fc", epochs=2).iterations == 2 * 400                # 40,000 / 100
    assert PRESETS["paper-mnist"].iterations == 250 * PRESETS["paper-mnist"].epoch_size


@pytest.mark.parametrize("kwargs, words", [({"epochs": 2, "iterations": 5}, "not both"), ({"epochs": 0}, ">= 1"),
                                           ({"epochs": 10**9}, "at most")])
def test_bad_epoch_budgets_name_the_field(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve("paper-mnist", **kwargs)
    assert caught.value.field == "epochs" and words in caught.value.message


def test_simultaneous_update_needs_k_1() -> None:
    assert resolve("paper-mnist", update="simultaneous").update == "simultaneous"
    with pytest.raises(ConfigError) as caught:
        resolve("paper-mnist", update="simultaneous", k=2)
    assert caught.value.field == "k"


def test_configs_round_trip_through_json_dicts() -> None:
    config = resolve("paper-mnist", epochs=1, seed=4)
    assert TrainConfig.from_dict(config.to_dict()) == config
