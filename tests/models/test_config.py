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


def test_scoring_and_keeping_the_best() -> None:
    config = resolve("paper-mnist", score_every=2500, keep="best")
    assert (config.score_every, config.keep) == (2500, "best")
    assert (PRESETS["paper-mnist"].score_every, PRESETS["paper-mnist"].keep) == (0, "last")


@pytest.mark.parametrize("kwargs, field, words", [
    ({"score_every": -1}, "score_every", "0.."), ({"score_every": 150}, "score_every", "multiple of log_every (100)"),
    ({"score_every": True}, "score_every", "integer"), ({"keep": "first"}, "keep", "'last' or 'best'"),
    ({"keep": "best"}, "keep", "score_every > 0")])
def test_bad_scoring_names_the_field(kwargs: dict, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve("paper-mnist", **kwargs)
    assert caught.value.field == field and words in caught.value.message


def test_configs_round_trip_through_json_dicts() -> None:
    config = resolve("paper-mnist", epochs=1, seed=4)
    assert TrainConfig.from_dict(config.to_dict()) == config



def test_data_order_defaults_to_shuffled_and_old_configs_meant_with_replacement() -> None:
    config = resolve("paper-mnist")
    assert config.data_order == "shuffled"                              # pylearn2's default, the authors'
    stored_before = {k: v for k, v in config.to_dict().items() if k != "data_order"}
    assert TrainConfig.from_dict(stored_before).data_order == "with-replacement"     # what those runs did
    with pytest.raises(ConfigError) as caught:
        resolve("paper-mnist", data_order="sorted")
    assert caught.value.field == "data_order" and "with-replacement" in caught.value.message
