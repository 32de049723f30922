"""Requests a hostile client would send: each is refused with a 4xx naming what is wrong, never a 500, and
nothing runs or is stored on its behalf."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.conftest import TEST_API_KEY
from tests.factories import register_model


def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


@pytest.fixture(scope="module")
def abuse_model(stack: None) -> str:
    register_model("abuse")
    return "abuse"


@pytest.mark.parametrize("field", ["z0", "z1"])
def test_a_seed_with_thousands_of_digits_is_a_422(client, abuse_model, field) -> None:  # type: ignore[no-untyped-def]
    params = {"model": abuse_model, "z0": "1", "z1": "2", field: "9" * 5000}
    problem = _problem(client.get("/interpolate", params=params), 422)
    assert problem["errors"][0]["field"] == field and "digits" in problem["detail"]


def test_a_name_with_a_trailing_newline_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", b"not an image")
    response = client.post("/datasets", data={"name": "flowers\n"},
                           files={"archive": ("a.zip", archive.getvalue(), "application/zip")})
    assert _problem(response, 422)["errors"][0]["field"] == "name"
    from service.datasets.uploads import check_name
    from service.errors import InvalidParameter
    with pytest.raises(InvalidParameter):
        check_name("flowers\n")


def test_parzen_queues_no_evaluation_without_a_key(client, abuse_model) -> None:  # type: ignore[no-untyped-def]
    def evaluations() -> list:  # type: ignore[type-arg]
        return [j for j in client.get("/jobs", params={"model": abuse_model}).json() if j["kind"] == "parzen"]

    before = len(evaluations())
    problem = _problem(client.get("/parzen", params={"model": abuse_model}, headers={"X-API-Key": ""}), 401)
    assert "API key" in problem["detail"]
    assert len(evaluations()) == before
    assert client.get("/parzen", params={"model": abuse_model}).status_code == 202  # with the key: queued
    # Once queued, following it is a read: no key needed.
    assert client.get("/parzen", params={"model": abuse_model}, headers={"X-API-Key": ""}).status_code == 202
    assert len(evaluations()) == before + 1


@pytest.mark.parametrize("headers", [
    {"X-API-Key": "wrong", "Authorization": f"Bearer {TEST_API_KEY}"},
    {"X-API-Key": TEST_API_KEY, "Authorization": "Bearer wrong"},
    {"X-API-Key": TEST_API_KEY, "Authorization": "Basic d3Jvbmc6d3Jvbmc="},
])
def test_any_wrong_credential_beside_a_valid_one_is_refused(client, headers) -> None:  # type: ignore[no-untyped-def]
    before = len(client.get("/jobs").json())
    _problem(client.post("/jobs", json={"model": "creds"}, headers=headers), 401)
    assert len(client.get("/jobs").json()) == before


@pytest.mark.parametrize("path, methods", [
    ("/jobs", {"GET", "POST"}), ("/datasets", {"GET", "POST"}), ("/datasets/x", {"GET", "DELETE"}),
    ("/samples", {"GET"}),
])
def test_options_and_405_list_every_method_of_the_path(client, path, methods) -> None:  # type: ignore[no-untyped-def]
    response = client.options(path)
    assert response.status_code == 204
    assert methods <= set(response.headers["allow"].split(", ")) <= methods | {"HEAD", "OPTIONS"}
    refused = client.patch(path)
    assert refused.status_code == 405
    assert methods <= set(refused.headers["allow"].split(", "))


@pytest.mark.parametrize("body, field, words", [
    ({"g_hidden": [65536, 65536]}, "g_hidden", "max_parameters"),
    ({"preset": "paper-cifar10-fc", "g_hidden": [16000, 16000], "optimizer": "adam"}, "g_hidden", "at most"),
    ({"log_every": 1}, "log_every", "at least 10"),
    ({"snapshot_every": 1}, "snapshot_every", "at least 10"),
    ({"checkpoint_seconds": 0.5}, "checkpoint_seconds", ">= 1"),
])
def test_a_job_beyond_the_budget_is_a_422_naming_field_and_limit(client, body, field, words) -> None:  # type: ignore[no-untyped-def]
    before = len(client.get("/jobs").json())
    problem = _problem(client.post("/jobs", json={"model": "budget", **body}), 422)
    assert problem["errors"][0]["field"] == field and words in problem["detail"], problem
    assert len(client.get("/jobs").json()) == before


def test_the_paper_presets_fit_the_budget_and_a_checkpoint_every_5_s_is_allowed(client) -> None:  # type: ignore[no-untyped-def]
    from models import budget
    from models.config import PRESETS
    from models.datasets import image_shape_of
    from service.settings import get_settings

    for config in PRESETS.values():
        budget.check(config.replace(optimizer="adam"), image_shape_of(config.dataset),  # type: ignore[arg-type]
                     get_settings().budget)
    response = client.post("/jobs", json={"model": "budget-ok", "checkpoint_seconds": 5, "iterations": 10})
    assert response.status_code == 202, response.text
    client.delete(f"/jobs/{response.json()['id']}")


def test_integral_floats_are_integers_as_json_schema_says(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/jobs", json={"model": "floats", "g_hidden": [64.0], "iterations": 10.0})
    assert response.status_code == 202, response.text
    client.delete(f"/jobs/{response.json()['id']}")


@pytest.mark.parametrize("key", ["", "wrong"])
def test_an_upload_without_a_valid_key_is_refused_before_its_body_is_sent(live_server, key) -> None:  # type: ignore[no-untyped-def]
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(live_server)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        # Headers announcing a 60 MB multipart body, and not one byte of it: the answer must come anyway.
        sock.sendall((f"POST /datasets HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
                      f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {60 << 20}\r\n\r\n").encode())
        sock.settimeout(5)
        head = sock.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 401"), head
