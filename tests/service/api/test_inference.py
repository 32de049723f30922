"""/v2, the Open Inference Protocol, spoken by Triton's own HTTP client (tritonclient[http]) to a live server:
server and model ready, model metadata, and infer equal to /samples for the same seeds (and labels, for a
conditional model)."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.factories import register_exported, register_model, tiny_config

MODEL = "t-oip"
LATENT = 12
COND = "t-oip-cond"


@pytest.fixture(scope="module")
def model(live_server):  # type: ignore[no-untyped-def]
    register_model(MODEL, latent_dim=LATENT, hidden=(16,), seed=4)
    return register_model(MODEL, latent_dim=LATENT, hidden=(16,), seed=5)


@pytest.fixture(scope="module")
def client(live_server):  # type: ignore[no-untyped-def]
    url = live_server.removeprefix("http://")
    with triton.InferenceServerClient(url) as c:
        yield c


@pytest.fixture(scope="module")
def conditional(live_server):  # type: ignore[no-untyped-def]
    return register_exported(COND, tiny_config(conditional=True))


def _samples(live_server: str, seed: int, version: int | str, model: str = MODEL, **label: int) -> np.ndarray:
    r = httpx.get(f"{live_server}/samples", params={"model": model, "n": 1, "seed": seed, "version": version,
                                                    "format": "npy", **label})
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content))


def _ints(name: str, values: list[int], binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput(name, [len(values)], "INT64")
    tensor.set_data_from_numpy(np.array(values, dtype=np.int64), binary_data=binary)
    return tensor


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
    with pytest.raises(InferenceServerException, match="label: model 't-oip' v.* is not conditional"):
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


def test_a_conditional_model_declares_label(client, conditional) -> None:  # type: ignore[no-untyped-def]
    meta = client.get_model_metadata(COND)
    assert {i["name"]: (i["datatype"], i["shape"]) for i in meta["inputs"]} == {
        "seed": ("INT64", [-1]), "z": ("FP32", [-1, 8]), "label": ("INT64", [-1])}


@pytest.mark.parametrize("binary", [True, False])
def test_infer_with_labels_equals_samples_with_label(client, conditional, live_server, binary) -> None:  # type: ignore[no-untyped-def]
    seeds, classes = [3, 3, 3, 11, 2**40], [0, 7, 9, 7, 4]
    result = client.infer(COND, [_ints("seed", seeds, binary), _ints("label", classes, binary)],
                          outputs=[triton.InferRequestedOutput("x", binary_data=binary)])
    x = result.as_numpy("x")
    expected = np.concatenate([_samples(live_server, s, conditional.version, COND, label=k)
                               for s, k in zip(seeds, classes, strict=True)])
    np.testing.assert_array_equal(x, expected)
    assert not np.array_equal(x[0], x[1]) and not np.array_equal(x[1], x[2])   # the label reaches G


def test_infer_without_label_draws_the_class_samples_draws(client, conditional, live_server) -> None:  # type: ignore[no-untyped-def]
    seeds = [5, 6, 2**33]
    x = client.infer(COND, [_ints("seed", seeds)]).as_numpy("x")
    expected = np.concatenate([_samples(live_server, s, conditional.version, COND) for s in seeds])
    np.testing.assert_array_equal(x, expected)


def test_label_errors_are_the_protocols(client, conditional, live_server) -> None:  # type: ignore[no-untyped-def]
    for seeds, classes, message in (([1], [10], r"label: class indices must be in 0\.\.9"),
                                    ([1], [-1], r"label: class indices must be in 0\.\.9"),
                                    ([1, 2], [3], r"label: must have shape \[2\]")):
        with pytest.raises(InferenceServerException, match=message):
            client.infer(COND, [_ints("seed", seeds), _ints("label", classes)])
    z = triton.InferInput("z", [1, 8], "FP32")
    z.set_data_from_numpy(np.zeros((1, 8), np.float32))
    with pytest.raises(InferenceServerException, match=r"label: model 't-oip-cond' is conditional: with `z`"):
        client.infer(COND, [z])
    r = httpx.post(f"{live_server}/v2/models/{COND}/infer", json={"inputs": [
        {"name": "seed", "datatype": "INT64", "shape": [1], "data": [1]},
        {"name": "label", "datatype": "INT64", "shape": [1], "data": [12]}]})
    assert r.status_code == 400 and r.json()["error"].startswith("label: class indices must be in 0..9"), r.text
    np.testing.assert_array_equal(client.infer(COND, [z, _ints("label", [2])]).as_numpy("x"),
                                  client.infer(COND, [z, _ints("label", [2])]).as_numpy("x"))
