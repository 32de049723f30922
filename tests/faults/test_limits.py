"""401, 413, 422, 429 and 409 in the one problem+json shape; request ids; metrics; no secret in any log line."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from service.keys import key_hash
from service.settings import get_settings

JOB = {"model": "limits", "preset": "quick", "iterations": 1}


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    assert response.headers["x-request-id"]
    return body


@pytest.fixture()
def anonymous(client: Any) -> Iterator[Any]:
    """A client that sends no key at all (the shared `client` sends the test key on every request)."""
    from fastapi.testclient import TestClient

    from service.main import app

    yield TestClient(app)  # no `with`: the lifespan already runs in `client`


def test_mutating_endpoints_need_a_key(client: Any, anonymous: Any) -> None:
    job_id = uuid.uuid4()
    for response in (anonymous.post("/jobs", json=JOB), anonymous.post(f"/jobs/{job_id}/cancel"),
                     client.post("/jobs", json=JOB, headers={"X-API-Key": "wrong"}),
                     anonymous.post("/jobs", json=JOB, headers={"Authorization": "Bearer wrong"})):
        problem = _problem(response, 401)
        assert "API key" in problem["detail"] and response.headers["www-authenticate"] == "Bearer"
    bearer = anonymous.post("/jobs", json={**JOB, "model": "limits-bearer"},
                            headers={"Authorization": f"Bearer {get_settings().api_key.get_secret_value()}"})
    assert bearer.status_code == 202, bearer.text
    assert anonymous.get("/jobs").status_code == 200  # reads are public by default


def test_keys_are_checked_against_sha256_digests(client: Any, anonymous: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "api_keys", [key_hash("rotated-key")])
    monkeypatch.setattr(settings, "api_key", SecretStr(""))
    assert anonymous.post("/jobs", json=JOB, headers={"X-API-Key": "rotated-key"}).status_code == 202
    _problem(client.post("/jobs", json=JOB), 401)  # the old plaintext key is gone
    monkeypatch.setattr(settings, "api_keys", [])
    assert "no API key is configured" in _problem(client.post("/jobs", json=JOB), 401)["detail"]


def test_reads_can_require_a_key(client: Any, anonymous: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "read_requires_key", True)
    _problem(anonymous.get("/jobs"), 401)
    _problem(anonymous.get("/models"), 401)
    # Refused before routing, yet labelled with the route it asked for, not "unmatched".
    assert 'route="/models",status="401"' in client.get("/metrics").text
    assert client.get("/jobs").status_code == 200
    for public in ("/healthz", "/readyz", "/metrics", "/static/app.js"):
        assert anonymous.get(public).status_code == 200, public
    key = client.headers["X-API-Key"]
    assert anonymous.get("/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert anonymous.get("/models", headers={"X-API-Key": key + "x"}).status_code == 401
    monkeypatch.setattr(get_settings(), "read_requires_key", False)   # read per request: open again
    assert anonymous.get("/models").status_code == 200


def test_bodies_over_the_limit_are_413_even_without_content_length(client: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "max_body_bytes", 1000)
    big = b'{"model": "limits", "preset": "' + b"x" * 2000 + b'"}'
    _problem(client.post("/jobs", content=big, headers={"Content-Type": "application/json"}), 413)

    def chunked() -> Iterator[bytes]:  # no Content-Length: the middleware must count
        for _ in range(4):
            yield b"x" * 400

    _problem(client.post("/jobs", content=chunked(), headers={"Content-Type": "application/json"}), 413)
    # Under the limit the replayed body reaches the route intact.
    assert client.post("/jobs", json={**JOB, "model": "limits-small"}).status_code == 202


def test_invalid_input_is_422_with_field_errors(client: Any) -> None:
    problem = _problem(client.post("/jobs", json={"model": "Bad Name!"}), 422)
    assert problem["errors"][0]["field"] == "model" and problem["errors"][0]["message"]
    problem = _problem(client.get("/samples", params={"model": "x", "n": 0}), 422)
    assert problem["errors"][0]["field"] == "n"


def test_sampling_is_rate_limited_per_client_with_retry_after(client: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "sample_rate_per_s", 0.5)
    monkeypatch.setattr(get_settings(), "sample_burst", 3)
    statuses = [client.get("/samples", params={"model": "no-such-model"}).status_code for _ in range(3)]
    assert statuses == [404, 404, 404]  # the burst
    limited = client.get("/samples", params={"model": "no-such-model"})
    _problem(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    _problem(client.get("/interpolate", params={"model": "no-such-model"}), 429)
    _problem(client.post("/v2/models/no-such-model/infer", json={"inputs": []}), 429)  # it runs a model too
    assert client.get("/v2/models/no-such-model").status_code == 404  # metadata does not
    assert client.get("/jobs").status_code == 200  # other endpoints are not limited
    # Another client (here: another valid key) has its own bucket.
    monkeypatch.setattr(get_settings(), "api_keys", [key_hash("second-client")])
    other = client.get("/samples", params={"model": "no-such-model"}, headers={"X-API-Key": "second-client"})
    assert other.status_code == 404


def test_idempotency_key_returns_the_same_job_and_refuses_reuse(client: Any) -> None:
    key = f"idem-{uuid.uuid4()}"
    first = client.post("/jobs", json={**JOB, "model": "limits-idem"}, headers={"Idempotency-Key": key})
    again = client.post("/jobs", json={**JOB, "model": "limits-idem"}, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    _problem(client.post("/jobs", json={**JOB, "model": "limits-other"}, headers={"Idempotency-Key": key}), 409)


def test_request_ids_are_echoed_and_logged_and_secrets_never_are(client: Any,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    secret = get_settings().api_key.get_secret_value()
    with caplog.at_level(logging.DEBUG):
        response = client.post("/jobs", json={**JOB, "model": "limits-log"}, headers={"X-Request-ID": "req-42"})
        client.post("/jobs", json=JOB, headers={"X-API-Key": "wrong-secret"})
        logging.getLogger("test").info("settings: %s", get_settings())
    assert response.headers["x-request-id"] == "req-42"
    assert any(r.name == "ganserve.http" and getattr(r, "request_id", None) == "req-42" for r in caplog.records)
    text = "\n".join(r.getMessage() + " " + str(vars(r)) for r in caplog.records)
    assert secret not in text and "wrong-secret" not in text
    assert client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"] != \
        "bad id with spaces"


def test_metrics_are_prometheus_text(client: Any) -> None:
    client.get("/jobs")
    body = client.get("/metrics").text
    for family in ("ganserve_http_request_duration_seconds_bucket", 'route="/jobs"', "ganserve_jobs{",
                   "ganserve_queue_depth", 'ganserve_dependency_up{dependency="database"} 1.0',
                   "ganserve_inference_seconds", "ganserve_inference_batch_samples"):
        assert family in body, family


def test_an_artifact_that_fails_its_sha256_is_never_served(client: Any) -> None:
    from sqlalchemy import text

    from service.db.engine import session_scope
    from tests.factories import register_model

    name = f"corrupt-{uuid.uuid4().hex[:8]}"
    register_model(name, seed=11)
    with session_scope() as session:  # flip bytes of the stored ONNX, leaving the registered digest
        session.execute(text("UPDATE blob_chunks SET data = overlay(data placing '\\xdeadbeef'::bytea from 40) "
                             "WHERE seq = 0 AND key = (SELECT artifact_key FROM model_versions WHERE name = :n)"),
                        {"n": name})
    try:
        problem = _problem(client.get("/samples", params={"model": name, "n": 4}), 500)
        assert "integrity" in problem["detail"]
    finally:  # later suites (the gallery) list every model: leave no broken one behind
        with session_scope() as session:
            session.execute(text("DELETE FROM blobs WHERE key IN "
                                 "(SELECT artifact_key FROM model_versions WHERE name = :n)"), {"n": name})
            session.execute(text("DELETE FROM model_versions WHERE name = :n"), {"n": name})


def test_read_keyed_mode_accepts_the_gallerys_cookie_for_reads_only(anonymous: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.factories import register_model

    register_model("cookie-reads")
    monkeypatch.setattr(get_settings(), "read_requires_key", True)
    assert anonymous.get("/").status_code == 200                  # the page (with its key form) loads
    _problem(anonymous.get("/samples", params={"model": "cookie-reads", "n": 1}), 401)
    _problem(anonymous.post("/gallery/key", headers={"X-API-Key": "wrong"}), 401)
    key = get_settings().api_key.get_secret_value()
    stored = anonymous.post("/gallery/key", headers={"X-API-Key": key})
    assert stored.status_code == 204
    cookie = stored.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    # What a page cannot put a header on: its images, its event streams, the lists behind them.
    assert anonymous.get("/samples", params={"model": "cookie-reads", "n": 1}).status_code == 200
    assert anonymous.get("/models").status_code == 200
    _problem(anonymous.post("/jobs", json=JOB), 401)             # a write still needs the header
    assert anonymous.delete("/gallery/key").status_code == 204
    _problem(anonymous.get("/models"), 401)


def test_metrics_can_require_a_key(client: Any, anonymous: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert anonymous.get("/metrics").status_code == 200
    monkeypatch.setattr(get_settings(), "metrics_requires_key", True)
    _problem(anonymous.get("/metrics"), 401)
    key = get_settings().api_key.get_secret_value()
    assert anonymous.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200
