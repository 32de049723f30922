"""/v2, the Open Inference Protocol, spoken by Triton's own HTTP client (tritonclient[http]) to a live server:
server and model ready, model metadata, and infer equal to /samples for the same seeds."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.factories import register_model

MODEL = "t-oip"
LATENT = 12


@pytest.fixture(scope="module")
def model(live_server):  # type: ignore[no-untyped-def]
    register_model(MODEL, latent_dim=LATENT, hidden=(16,), seed=4)
    return register_model(MODEL, latent_dim=LATENT, hidden=(16,), seed=5)


@pytest.fixture(scope="module")
def client(live_server):  # type: ignore[no-untyped-def]
    url = live_server.removeprefix("http://")
    with triton.InferenceServerClient(url) as c:
        yield c


def _samples(live_server: str, seed: int, version: int | str) -> np.ndarray:
    r = httpx.get(f"{live_server}/samples", params={"model": MODEL, "n": 1, "seed": seed, "version": version,
                                                    "format": "npy"})
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content))


def test_server_and_model_ready_and_metadata(client, model) -> None:  # type: ignore[no-untyped-def]
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["name"] == "ganserve"
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, str(model.version))
    assert not client.is_model_ready("t-no-such-model")
    meta = client.get_model_metadata(MODEL)
    assert meta["versions"] == [str(model.version - 1), str(model.version)]
    assert {i["name"]: i["shape"] for i in meta["inputs"]} == {"seed": [-1], "z": [-1, LATENT]}
    assert meta["outputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]


@pytest.mark.parametrize("binary", [True, False])
def test_infer_from_seeds_equals_samples(client, model, live_server, binary) -> None:  # type: ignore[no-untyped-def]
    seeds = np.array([3, 7, 2**40], dtype=np.int64)
    tensor = triton.InferInput("seed", [len(seeds)], "INT64")
    tensor.set_data_from_numpy(seeds, binary_data=binary)
    result = client.infer(MODEL, [tensor], model_version=str(model.version - 1),
                          outputs=[triton.InferRequestedOutput("x", binary_data=binary)])
    x = result.as_numpy("x")
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.float32
    expected = np.concatenate([_samples(live_server, int(s), model.version - 1) for s in seeds])
    np.testing.assert_array_equal(x, expected)
    assert result.get_response()["model_version"] == str(model.version - 1)


def test_infer_from_z_on_the_latest_version_and_through_an_alias(client, model, live_server) -> None:  # type: ignore[no-untyped-def]
    z = np.random.default_rng(0).uniform(-1, 1, (2, LATENT)).astype(np.float32)
    tensor = triton.InferInput("z", list(z.shape), "FP32")
    tensor.set_data_from_numpy(z)
    latest = client.infer(MODEL, [tensor]).as_numpy("x")
    assert latest.shape == (2, 1, 28, 28) and 0 <= latest.min() and latest.max() <= 1
    httpx.put(f"{live_server}/models/{MODEL}/aliases/live", json={"version": model.version},
              headers={"X-API-Key": "test-key-not-secret"}).raise_for_status()
    np.testing.assert_array_equal(client.infer(MODEL, [tensor], model_version="live").as_numpy("x"), latest)


def test_errors_are_the_protocols(client, model, live_server) -> None:  # type: ignore[no-untyped-def]
    tensor = triton.InferInput("z", [1, LATENT + 1], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, LATENT + 1), np.float32))
    with pytest.raises(InferenceServerException, match=r"z: must have shape \[n, 12\]"):
        client.infer(MODEL, [tensor])
    label = triton.InferInput("label", [1], "INT64")
    label.set_data_from_numpy(np.zeros(1, np.int64))
    seed = triton.InferInput("seed", [1], "INT64")
    seed.set_data_from_numpy(np.zeros(1, np.int64))
    with pytest.raises(InferenceServerException, match="not conditional"):
        client.infer(MODEL, [seed, label])
    r = httpx.post(f"{live_server}/v2/models/t-none/infer", json={"inputs": [
        {"name": "seed", "datatype": "INT64", "shape": [1], "data": [1]}]})
    assert r.status_code == 404 and "unknown model" in r.json()["error"]
    r = httpx.post(f"{live_server}/v2/models/{MODEL}/infer", json={"inputs": [
        {"name": "seed", "datatype": "FP32", "shape": [1], "data": [1]}]})
    assert r.status_code == 400 and r.json() == {"error": "inputs[0].datatype: seed must be INT64; got 'FP32'"}


def test_malformed_requests_are_400_naming_the_field(live_server, model) -> None:  # type: ignore[no-untyped-def]
    seed = {"name": "seed", "datatype": "INT64", "shape": [1], "data": [1]}
    for body, field in (({"inputs": [seed], "outputs": [{"name": "x", "parameters": [None]}]}, "outputs[0].parameters"),
                        ({"inputs": [seed], "outputs": [{"name": "y"}]}, "outputs"),
                        ({"inputs": [{**seed, "shape": [-1]}]}, "inputs[0].shape"),
                        ({"inputs": [{**seed, "data": [1.5]}]}, "inputs[0].data"),
                        ({"inputs": [{**seed, "data": [1, 2]}]}, "inputs[0].data"),
                        ({"inputs": [{**seed, "name": {}}]}, "inputs[0].name"),
                        ({"inputs": [{**seed, "datatype": []}]}, "inputs[0].datatype"),
                        ({"inputs": [{**seed, "parameters": {"binary_data_size": 0}, "data": [None]}]},
                         "inputs[0].parameters.binary_data_size"),
                        ({"inputs": []}, "inputs"), ([1], "body")):
        r = httpx.post(f"{live_server}/v2/models/{MODEL}/infer", json=body)
        assert r.status_code == 400 and r.json()["error"].startswith(f"{field}:"), (body, r.text)
    r = httpx.post(f"{live_server}/v2/models/{MODEL}/infer", content=b"{}xx",
                   headers={"Inference-Header-Content-Length": "x"})
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]
