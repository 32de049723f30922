"""Every rejected request says which parameter is wrong and what is allowed; nothing is half-written."""

from __future__ import annotations

import pytest


def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.mark.parametrize("body, field, words", [
    ({"model": "m", "preset": "nope"}, "preset", "paper-mnist"),
    ({"model": "m", "dataset": "imagenet"}, "dataset", "mnist"),
    ({"model": "m", "k": 0}, "k", ">= 1"),
    ({"model": "m", "update": "simultaneous", "k": 2}, "k", "must be 1"),
    ({"model": "m", "update": "sometimes"}, "update", "simultaneous"),
    ({"model": "m", "data_order": "sorted"}, "data_order", "with-replacement"),
    ({"model": "m", "epochs": 2, "iterations": 10}, "epochs", "not both"),
    ({"model": "m", "epochs": 0}, "epochs", ">= 1"),
    ({"model": "m", "batch_size": 0}, "batch_size", ">= 1"),
    ({"model": "m", "lr": -0.1}, "lr", "> 0"),
    ({"model": "m", "iterations": 0}, "iterations", ">= 1"),
    ({"model": "Bad Name!"}, "model", "pattern"),
    ({"model": "m", "colour": "red"}, "colour", "unknown parameter; allowed: batch_size, bf16, checkpoint_seconds"),
])
def test_bad_job_requests_are_422_naming_the_field(client, body, field, words) -> None:  # type: ignore[no-untyped-def]
    before = len(client.get("/jobs").json())
    problem = _problem(client.post("/jobs", json=body), 422)
    assert problem["errors"][0]["field"] == field
    assert words in problem["detail"]
    assert len(client.get("/jobs").json()) == before


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_lr_is_rejected(client, value) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/jobs", content=b'{"model": "m", "lr": ' + value + b"}",
                           headers={"Content-Type": "application/json"})
    problem = _problem(response, 422)
    assert problem["errors"][0]["field"] == "lr" and "finite" in problem["detail"]


def test_malformed_json_is_422(client) -> None:  # type: ignore[no-untyped-def]
    _problem(client.post("/jobs", content=b"{not json", headers={"Content-Type": "application/json"}), 422)


@pytest.mark.parametrize("n", [0, 1025, -3])
def test_n_out_of_range_is_422(client, n) -> None:  # type: ignore[no-untyped-def]
    problem = _problem(client.get("/samples", params={"model": "mnist", "n": n}), 422)
    assert problem["errors"][0]["field"] == "n"


def test_unknown_model_is_404_listing_known_ones(client) -> None:  # type: ignore[no-untyped-def]
    problem = _problem(client.get("/samples", params={"model": "no-such-model"}), 404)
    assert "known models" in problem["detail"]


def test_unknown_job_is_404(client) -> None:  # type: ignore[no-untyped-def]
    _problem(client.get("/jobs/00000000-0000-0000-0000-000000000000"), 404)
