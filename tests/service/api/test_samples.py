"""/samples and /interpolate against a registered generator: reproducibility, formats, neighbours, errors."""

from __future__ import annotations

import base64
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import mnist_available
from tests.factories import Registered, register_model

MODEL = "t-sampling"
LATENT = 16


@pytest.fixture(scope="module")
def model(client) -> Registered:  # type: ignore[no-untyped-def]
    return register_model(MODEL, latent_dim=LATENT, hidden=(32,), seed=1)


def _get(client, path: str, **params):  # type: ignore[no-untyped-def]
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response


def _npy(response) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.load(io.BytesIO(response.content), allow_pickle=False)


def test_same_seed_same_bytes_and_headers(client, model) -> None:  # type: ignore[no-untyped-def]
    for fmt in ("png", "json", "npy"):
        a = _get(client, "/samples", model=MODEL, n=9, seed=42, version=model.version, format=fmt)
        b = _get(client, "/samples", model=MODEL, n=9, seed=42, version=model.version, format=fmt)
        assert a.content == b.content
        assert a.headers["X-Seed"] == "42" and a.headers["X-Model-Version"] == str(model.version)
        assert a.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert a.headers["ETag"] == b.headers["ETag"]
    etags = {_get(client, "/samples", model=MODEL, n=9, seed=42, format=f).headers["ETag"]
             for f in ("png", "json", "npy")}
    assert len(etags) == 3


def test_if_none_match_is_304(client, model) -> None:  # type: ignore[no-untyped-def]
    first = _get(client, "/samples", model=MODEL, n=4, seed=5, version=model.version)
    again = client.get("/samples", params={"model": MODEL, "n": 4, "seed": 5, "version": model.version},
                       headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == first.headers["ETag"]


def test_different_seeds_give_different_images(client, model) -> None:  # type: ignore[no-untyped-def]
    a = _npy(_get(client, "/samples", model=MODEL, n=4, seed=1, format="npy"))
    b = _npy(_get(client, "/samples", model=MODEL, n=4, seed=2, format="npy"))
    assert a.shape == (4, 1, 28, 28) and a.dtype == np.float32
    assert np.abs(a - b).max() > 0.05
    assert len({a[i].tobytes() for i in range(4)}) == 4  # and the samples of one request differ too


def test_server_chosen_seed_is_returned_and_reproduces(client, model) -> None:  # type: ignore[no-untyped-def]
    first = _get(client, "/samples", model=MODEL, n=3, format="npy")
    assert first.headers["Cache-Control"] == "no-store"
    seed = int(first.headers["X-Seed"])
    again = _get(client, "/samples", model=MODEL, n=3, seed=seed, format="npy")
    assert again.content == first.content
    assert again.headers["Cache-Control"] == "no-cache"  # seeded, but "latest" may move


def test_png_grid_and_json_shapes(client, model) -> None:  # type: ignore[no-untyped-def]
    png = np.asarray(Image.open(io.BytesIO(_get(client, "/samples", model=MODEL, n=64, seed=3).content)))
    assert png.shape == (8 * 30 + 2, 8 * 30 + 2) and png.std() > 0
    body = _get(client, "/samples", model=MODEL, n=5, seed=3, format="json").json()
    assert body["seed"] == 3 and body["n"] == 5 and body["image_shape"] == [1, 28, 28]
    assert np.asarray(body["z"]).shape == (5, LATENT)
    assert body["noise"]["kind"] == "uniform" and np.all(np.abs(body["z"]) <= body["noise"]["high"])
    first = Image.open(io.BytesIO(base64.b64decode(body["images"][0].split(",", 1)[1])))
    assert first.size == (28, 28)
    npy = _npy(_get(client, "/samples", model=MODEL, n=5, seed=3, format="npy"))
    assert np.array_equal(np.asarray(first), (np.clip(npy[0, 0], 0, 1) * 255 + 0.5).astype(np.uint8))


def test_concurrent_requests_are_batched_without_changing_bytes(client, model) -> None:  # type: ignore[no-untyped-def]
    from service.serving.registry import registry

    seeds = list(range(100, 124))
    alone = {s: _get(client, "/samples", model=MODEL, n=1 + s % 7, seed=s, format="npy").content for s in seeds}
    batcher = registry.cached(MODEL).batcher  # type: ignore[union-attr]
    batches, requests = batcher.batches, batcher.requests
    with ThreadPoolExecutor(12) as pool:
        together = dict(zip(seeds, pool.map(
            lambda s: _get(client, "/samples", model=MODEL, n=1 + s % 7, seed=s, format="npy").content, seeds)))
    assert together == alone
    assert batcher.requests - requests == len(seeds)
    assert batcher.batches - batches < len(seeds)  # some runs served several requests


def test_batcher_rows_match_individual_runs(client, model) -> None:  # type: ignore[no-untyped-def]
    from service.serving.noise import sample_noise
    from service.serving.registry import registry

    loaded = registry.get(MODEL, model.version)
    zs = [sample_noise(loaded.info, k, seed) for seed, k in enumerate((1, 3, 64, 2, 7, 1, 30))]
    futures = [loaded.generate(z) for z in zs]
    for z, future in zip(zs, futures, strict=True):
        assert np.array_equal(future.result(timeout=30), loaded.run(z))


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_ends_are_z0_and_z1_and_match_samples(client: Any, model: Registered, method: str) -> None:
    body = _get(client, "/interpolate", model=MODEL, z0=11, z1=12, steps=7, method=method, format="json").json()
    assert len(body["z"]) == 7 and len(body["images"]) == 7 and body["t"][0] == 0 and body["t"][-1] == 1
    s0 = _get(client, "/samples", model=MODEL, n=1, seed=11, format="json").json()
    s1 = _get(client, "/samples", model=MODEL, n=1, seed=12, format="json").json()
    assert body["z"][0] == s0["z"][0] and body["z"][-1] == s1["z"][0]
    assert body["images"][0] == s0["images"][0] and body["images"][-1] == s1["images"][0]
    assert body["z"][3] != body["z"][0]
    # The same path from explicit floats (the JSON's own numbers round-trip to the same float32s).
    z0 = ",".join(repr(v) for v in s0["z"][0])
    z1 = ",".join(repr(v) for v in s1["z"][0])
    floats = _get(client, "/interpolate", model=MODEL, z0=z0, z1=z1, steps=7, method=method, format="json")
    assert floats.json()["images"] == body["images"]


def test_lerp_is_linear_and_slerp_is_not(client, model) -> None:  # type: ignore[no-untyped-def]
    lerp = np.asarray(_get(client, "/interpolate", model=MODEL, z0=1, z1=2, steps=5, format="json").json()["z"])
    slerp = np.asarray(_get(client, "/interpolate", model=MODEL, z0=1, z1=2, steps=5, method="slerp",
                            format="json").json()["z"])
    np.testing.assert_allclose(lerp[2], (lerp[0] + lerp[-1]) / 2, atol=1e-6)
    assert np.linalg.norm(slerp[2]) > np.linalg.norm(lerp[2])  # the arc keeps its radius, the chord does not


def test_interpolation_png_strip_and_gif(client, model) -> None:  # type: ignore[no-untyped-def]
    strip = Image.open(io.BytesIO(_get(client, "/interpolate", model=MODEL, z0=1, z1=2, steps=10).content))
    assert strip.size == (10 * 30 + 2, 30 + 2)
    gif = _get(client, "/interpolate", model=MODEL, z0=1, z1=2, steps=4, format="gif")
    assert gif.headers["content-type"] == "image/gif"
    assert Image.open(io.BytesIO(gif.content)).n_frames == 6  # there and back: 0 1 2 3 2 1


@pytest.mark.skipif(not mnist_available(), reason="MNIST is not in GANSERVE_DATA_DIR")
def test_neighbors_are_the_nearest_training_images(client, model) -> None:  # type: ignore[no-untyped-def]
    from models import datasets
    from service.settings import get_settings

    body = _get(client, "/samples", model=MODEL, n=6, seed=8, format="json", neighbors="true").json()
    samples = _npy(_get(client, "/samples", model=MODEL, n=6, seed=8, format="npy")).reshape(6, -1)
    train = datasets.load("mnist", get_settings().resolved_data_dir).train.astype(np.float64)
    for sample, found in zip(samples, body["neighbors"], strict=True):
        distances = ((train - sample.astype(np.float64)) ** 2).sum(axis=1)
        assert found["distance"] == pytest.approx(distances.min(), rel=1e-6)
        assert distances[found["index"]] == pytest.approx(distances.min(), rel=1e-6)
    pairs = _npy(_get(client, "/samples", model=MODEL, n=6, seed=8, format="npy", neighbors="true"))
    assert pairs.shape == (6, 2, 1, 28, 28)
    assert np.array_equal(pairs[:, 1].reshape(6, -1), train[[f["index"] for f in body["neighbors"]]]
                          .astype(np.float32))
    png = Image.open(io.BytesIO(_get(client, "/samples", model=MODEL, n=6, seed=8, neighbors="true").content))
    assert png.size == (2 * (3 * 30 + 2) + 6, 2 * 30 + 2)  # two 3-column grids and the separator band


def test_a_new_version_replaces_the_latest_without_a_gap(client) -> None:  # type: ignore[no-untyped-def]
    name = "t-swap"
    register_model(name, latent_dim=LATENT, seed=2)
    assert _get(client, "/samples", model=name, n=2).headers["X-Model-Version"] == "1"
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            response = client.get("/samples", params={"model": name, "n": 2})
            seen.append((response.status_code, int(response.headers.get("X-Model-Version", 0))))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    register_model(name, latent_dim=LATENT, seed=3)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not seen or seen[-1][1] != 2):
        time.sleep(0.05)
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert {status for status, _ in seen} == {200}
    versions = [v for _, v in seen]
    assert versions[0] == 1 and versions[-1] == 2 and set(versions) == {1, 2}


def test_served_samples_match_the_torch_generator(client) -> None:  # type: ignore[no-untyped-def]
    """The paper's MNIST generator exported by the worker's exporter, served, compared with torch to 1e-5."""
    torch = pytest.importorskip("torch")
    from models.config import resolve
    from models.nets import build_generator
    from service.serving.noise import sample_noise
    from worker.export import export_generator

    config = resolve("paper-mnist", seed=4)
    mean = np.random.default_rng(0).uniform(0.01, 0.99, 784)  # a non-trivial output bias
    generator = build_generator(config, mean).eval()
    exported = export_generator(generator, config, (1, 28, 28), {})
    noise = {"kind": "uniform", "low": -config.noise_scale, "high": config.noise_scale}
    registered = register_model("t-torch", onnx_bytes=exported.onnx, latent_dim=config.latent_dim, noise=noise)
    served = _npy(_get(client, "/samples", model="t-torch", version=registered.version, n=64, seed=9,
                       format="npy"))

    prior = SimpleNamespace(latent_dim=config.latent_dim, noise=noise)  # what the version row says
    with torch.no_grad():
        expected = generator(torch.from_numpy(sample_noise(prior, 64, 9))).numpy()
    assert np.abs(served.reshape(64, -1) - expected).max() <= 1e-5


# --- errors: 422 naming the parameter and what is allowed, 404 listing what exists ---

def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


@pytest.mark.parametrize("path, params, field, words", [
    ("/samples", {"n": 0}, "n", "1..1024"),
    ("/samples", {"n": 1025}, "n", "1..1024"),
    ("/samples", {"format": "bmp"}, "format", "png, json, npy"),
    ("/samples", {"seed": -1}, "seed", "0..9223372036854775807"),
    ("/samples", {"version": 0}, "version", "1..2147483647"),
    ("/samples", {"version": 2**40}, "version", "1..2147483647"),
    ("/interpolate", {"z0": 1, "z1": 2, "steps": 1}, "steps", "2..64"),
    ("/interpolate", {"z0": 1, "z1": 2, "steps": 65}, "steps", "2..64"),
    ("/interpolate", {"z0": 1, "z1": 2, "format": "npy"}, "format", "png, gif, json"),
    ("/interpolate", {"z0": 1, "z1": 2, "method": "cubic"}, "method", "lerp, slerp"),
    ("/interpolate", {"z0": "1,2,3", "z1": 2}, "z0", f"{LATENT} comma-separated finite floats"),
    ("/interpolate", {"z0": 1, "z1": ",".join(["0.5"] * (LATENT - 1) + ["nan"])}, "z1", "non-finite"),
    ("/interpolate", {"z0": ",".join(["inf"] * LATENT), "z1": 2}, "z0", "non-finite"),
    ("/interpolate", {"z0": "cat", "z1": 2}, "z0", "integer seed"),
    ("/interpolate", {"z0": str(2**64), "z1": 2}, "z0", "too large"),
])
def test_bad_parameters_are_422_naming_the_parameter(client: Any, model: Registered, path: str,
                                                     params: dict[str, Any], field: str, words: str) -> None:
    problem = _problem(client.get(path, params={"model": MODEL, **params}), 422)
    assert problem["errors"][0]["field"] == field
    assert words in problem["detail"]


def test_non_integer_n_is_422(client, model) -> None:  # type: ignore[no-untyped-def]
    assert _problem(client.get("/samples", params={"model": MODEL, "n": "many"}), 422)["errors"][0]["field"] == "n"


@pytest.mark.parametrize("path, params, field", [
    ("/samples", {}, "model"),
    ("/samples", {"model": MODEL, "neighbors": "maybe"}, "neighbors"),
    ("/samples", {"model": MODEL, "seed": "1.5"}, "seed"),
    ("/interpolate", {"model": MODEL, "z0": 1}, "z1"),
    ("/interpolate", {"model": MODEL, "z0": 1, "z1": 2, "steps": "ten"}, "steps"),
])
def test_missing_or_mistyped_query_parameters_are_422_naming_them(client: Any, model: Registered, path: str,
                                                                   params: dict[str, Any], field: str) -> None:
    problem = _problem(client.get(path, params=params), 422)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert problem["detail"].startswith(f"{field}: ")


@pytest.mark.parametrize("path, expected", [
    ("/samples", {"model": (True, "string"), "n": (False, "integer"), "seed": (False, None),
                  "version": (False, None), "format": (False, "string"), "neighbors": (False, "boolean"),
                  "label": (False, None)}),
    ("/interpolate", {"model": (True, "string"), "z0": (True, "string"), "z1": (False, None),
                      "steps": (False, "integer"), "version": (False, None), "method": (False, "string"),
                      "format": (False, "string"), "label": (False, None), "label0": (False, None),
                      "label1": (False, None)}),
])
def test_the_schema_documents_every_query_parameter(client: Any, path: str,
                                                    expected: dict[str, tuple[bool, str | None]]) -> None:
    """The routes parse their query themselves (service/api/query.py): OpenAPI must still list each parameter,
    whether it is required and its type (None: integer or null), and the If-None-Match header."""
    parameters = client.get("/openapi.json").json()["paths"][path]["get"]["parameters"]
    query = {p["name"]: (p["required"], p["schema"].get("type")) for p in parameters if p["in"] == "query"}
    assert query == expected
    assert all(p["description"] for p in parameters)
    assert [p["name"].lower() for p in parameters if p["in"] == "header"] == ["if-none-match"]


@pytest.mark.parametrize("path, extra", [("/samples", {}), ("/interpolate", {"z0": 1, "z1": 2})])
def test_unknown_model_and_version_are_404_listing_known_ones(client: Any, model: Registered, path: str,
                                                              extra: dict[str, Any]) -> None:
    for name in ("no-such-model", "Bad\x00Name!"):
        problem = _problem(client.get(path, params={"model": name, **extra}), 404)
        assert "known models" in problem["detail"] and MODEL in problem["detail"]
    problem = _problem(client.get(path, params={"model": MODEL, "version": 99, **extra}), 404)
    assert "known versions" in problem["detail"] and str(model.version) in problem["detail"]


def test_the_endpoint_answers_as_the_app_does(client, model) -> None:  # type: ignore[no-untyped-def]
    """GET /samples's endpoint is called with the bare Request (service.api.samples.RequestRoute): on its own
    it must give the same status, headers and bytes as the app, and the request must be labelled with the
    route in the metrics."""
    import asyncio

    from starlette.requests import Request

    from service.api import samples as samples_api

    query = f"model={MODEL}&n=5&seed=11&version={model.version}&format=png".encode()
    scope = {"type": "http", "method": "GET", "path": "/samples", "query_string": query, "root_path": "",
             "headers": [(b"if-none-match", b'"nope"')]}
    routed = asyncio.run(samples_api.samples(Request(scope)))
    served = client.get(f"/samples?{query.decode()}", headers={"If-None-Match": '"nope"'})
    assert served.status_code == routed.status_code == 200
    assert served.content == routed.body
    wanted = {k.decode(): v.decode() for k, v in routed.raw_headers}
    assert {k: served.headers[k] for k in wanted} == wanted
    assert 'route="/samples"' in client.get("/metrics").text


def test_a_request_runs_once_and_its_errors_are_the_apps(client, model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The sampling work runs once per request, a success as an error; an error raised there is answered by the
    app's handlers (the 422 naming the parameter)."""
    from service.serving import generate

    outcomes: list[str] = []
    original = generate.samples

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            response = await original(*args, **kwargs)
        except Exception:
            outcomes.append("raised")
            raise
        outcomes.append("answered")
        return response

    monkeypatch.setattr(generate, "samples", counted)                # the route looks it up on the module
    assert client.get("/samples", params={"model": MODEL, "n": 2, "seed": 1}).status_code == 200
    assert outcomes == ["answered"]
    problem = _problem(client.get("/samples", params={"model": MODEL, "n": 0}), 422)
    assert "n" in problem["detail"] and outcomes == ["answered", "raised"]

