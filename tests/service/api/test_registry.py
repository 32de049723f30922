"""The model registry: model cards, ONNX downloads, aliases in every `version` parameter, retiring versions,
and API key scopes."""

from __future__ import annotations

import hashlib

import numpy as np
import onnxruntime as ort
import pytest

from service.keys import key_hash
from service.settings import get_settings
from tests.factories import register_model

MODEL = "t-registry"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def versions(client):  # type: ignore[no-untyped-def]
    return [register_model(MODEL, latent_dim=8, hidden=(16,), seed=s) for s in (1, 2, 3)]


def test_model_card_names_everything(client, versions) -> None:  # type: ignore[no-untyped-def]
    v = versions[0]
    card = client.get(f"/models/{MODEL}/versions/{v.version}").json()
    assert card["name"] == MODEL and card["version"] == v.version
    assert card["artifact"]["sha256"] == v.sha256 and card["artifact"]["size"] > 0
    assert card["artifact"]["url"] == f"/models/{MODEL}/versions/{v.version}/onnx"
    assert {"config", "dataset", "dataset_sha256", "metrics", "scores", "job_id", "created_at",
            "aliases"} <= card.keys()
    missing = client.get(f"/models/{MODEL}/versions/999")
    assert missing.status_code == 404 and "known versions" in missing.json()["detail"]


def test_onnx_download_is_the_artifact_with_its_sha256_as_etag(client, versions) -> None:  # type: ignore[no-untyped-def]
    v = versions[1]
    response = client.get(f"/models/{MODEL}/versions/{v.version}/onnx")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == v.sha256
    assert response.headers["ETag"] == f'"{v.sha256}"'
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert f"{MODEL}-v{v.version}.onnx" in response.headers["Content-Disposition"]
    # It runs anywhere: onnxruntime straight from the downloaded bytes.
    session = ort.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    x = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 8), np.float32)})[0]
    assert x.shape == (2, 784)
    again = client.get(f"/models/{MODEL}/versions/{v.version}/onnx", headers={"If-None-Match": f'"{v.sha256}"'})
    assert again.status_code == 304


def test_an_alias_works_wherever_a_version_does_and_is_never_cached_as_immutable(
        client, versions) -> None:  # type: ignore[no-untyped-def]
    v = versions[0]
    put = client.put(f"/models/{MODEL}/aliases/production", json={"version": v.version})
    assert put.status_code == 200 and put.json() == {"name": MODEL, "alias": "production", "version": v.version}
    by_alias = client.get("/samples", params={"model": MODEL, "n": 4, "seed": 3, "version": "production",
                                              "format": "npy"})
    by_number = client.get("/samples", params={"model": MODEL, "n": 4, "seed": 3, "version": v.version,
                                               "format": "npy"})
    assert by_alias.status_code == 200 and by_alias.content == by_number.content
    assert by_alias.headers["X-Model-Version"] == str(v.version)
    assert by_number.headers["Cache-Control"] == IMMUTABLE and by_alias.headers["Cache-Control"] == "no-cache"
    strip = client.get("/interpolate", params={"model": MODEL, "z0": 1, "z1": 2, "version": "production"})
    assert strip.status_code == 200 and strip.headers["Cache-Control"] == "no-cache"
    onnx = client.get(f"/models/{MODEL}/versions/production/onnx")
    assert onnx.headers["ETag"] == f'"{v.sha256}"' and onnx.headers["Cache-Control"] == "no-cache"
    assert client.get(f"/models/{MODEL}/versions/production").json()["aliases"] == ["production"]
    assert next(m for m in client.get("/models").json() if m["name"] == MODEL)["aliases"] == {
        "production": v.version}
    # Moving the alias moves every response resolved through it.
    client.put(f"/models/{MODEL}/aliases/production", json={"version": versions[2].version})
    moved = client.get("/samples", params={"model": MODEL, "n": 4, "seed": 3, "version": "production"})
    assert moved.headers["X-Model-Version"] == str(versions[2].version)
    unknown = client.get("/samples", params={"model": MODEL, "n": 4, "version": "staging"})
    assert unknown.status_code == 404 and "no alias 'staging'" in unknown.json()["detail"]
    bad = client.get("/samples", params={"model": MODEL, "n": 4, "version": "-3"})
    assert bad.status_code == 422 and "version" in bad.json()["detail"]
    assert client.put(f"/models/{MODEL}/aliases/x", json={"version": 999}).status_code == 404
    assert client.delete(f"/models/{MODEL}/aliases/production").status_code == 204
    assert client.delete(f"/models/{MODEL}/aliases/production").status_code == 404


def test_retiring_a_version_refused_while_aliased_and_its_number_never_reused(
        client, versions) -> None:  # type: ignore[no-untyped-def]
    v = versions[1]
    client.put(f"/models/{MODEL}/aliases/keep", json={"version": v.version})
    refused = client.delete(f"/models/{MODEL}/versions/{v.version}")
    assert refused.status_code == 409 and "keep" in refused.json()["detail"]
    client.delete(f"/models/{MODEL}/aliases/keep")
    client.get("/samples", params={"model": MODEL, "n": 1, "version": v.version})  # loaded in this process
    assert client.delete(f"/models/{MODEL}/versions/{v.version}").status_code == 204
    gone = client.get("/samples", params={"model": MODEL, "n": 1, "version": v.version})
    assert gone.status_code == 404 and "retired" in gone.json()["detail"]
    assert client.get(f"/models/{MODEL}/versions/{v.version}/onnx").status_code == 404
    newest = register_model(MODEL, latent_dim=8, hidden=(16,), seed=9)
    assert newest.version == versions[-1].version + 1
    # Retiring the newest does not hand its number out again either.
    assert client.delete(f"/models/{MODEL}/versions/{newest.version}").status_code == 204
    assert register_model(MODEL, latent_dim=8, hidden=(16,), seed=10).version == newest.version + 1


def test_key_scopes(client, versions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings = get_settings()
    monkeypatch.setattr(settings, "api_keys", [f"read:{key_hash('reader')}", key_hash("trainer"),
                                              f"admin:{key_hash('boss')}"])
    path = f"/models/{MODEL}/aliases/scoped"
    body = {"version": versions[0].version}
    for key, status in (("reader", 403), ("trainer", 403), ("boss", 200), ("nobody", 401)):
        response = client.put(path, json=body, headers={"X-API-Key": key})
        assert response.status_code == status, (key, response.text)
    forbidden = client.post("/jobs", json={"model": "x", "preset": "quick"}, headers={"X-API-Key": "reader"})
    assert forbidden.status_code == 403 and "'train'" in forbidden.json()["detail"]
    assert client.delete(path, headers={"Authorization": "Bearer boss"}).status_code == 204


def test_version_params_of_parzen_accept_an_alias(client, versions) -> None:  # type: ignore[no-untyped-def]
    client.put(f"/models/{MODEL}/aliases/scored", json={"version": versions[0].version})
    response = client.get("/parzen", params={"model": MODEL, "version": "scored"})
    assert response.status_code in (200, 202), response.text
    assert response.json()["version"] == versions[0].version
    client.delete(f"/models/{MODEL}/aliases/scored")
