"""Conditional models (p(x | c)) and encoders (E(x) -> z) through the API: /samples and /interpolate with
labels, POST /encode, and what GET /models says about them."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.factories import Registered, register_exported, register_model, tiny_config

COND = "t-cond"
PLAIN = "t-cond-plain"
CODED = "t-coded"


@pytest.fixture(scope="module")
def models(client: Any) -> dict[str, Registered]:
    return {COND: register_exported(COND, tiny_config(conditional=True, encoder=True)),
            PLAIN: register_model(PLAIN, latent_dim=8),
            CODED: register_exported(CODED, tiny_config(encoder=True))}


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response


def _problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if field is not None:
        assert body["errors"][0]["field"] == field, body
    return body


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _data_url_pixels(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))), dtype=np.float32)


def test_models_list_label_names_and_encoders(client: Any, models: dict[str, Registered]) -> None:
    listed = {m["name"]: m["versions"][-1] for m in client.get("/models").json()}
    assert listed[COND]["label_names"] == [str(k) for k in range(10)]
    assert listed[COND]["encoder"]["sha256"] and listed[COND]["encoder"]["size"] > 0
    assert listed[PLAIN]["label_names"] == [] and listed[PLAIN]["encoder"] is None
    assert listed[CODED]["label_names"] == [] and listed[CODED]["encoder"] is not None


def test_samples_depend_on_the_label(client: Any, models: dict[str, Registered]) -> None:
    def get(label: str) -> bytes:
        return _ok(client.get("/samples", params={"model": COND, "n": 8, "seed": 3, "label": label})).content

    assert get("7") == get("7")                                  # same seed, same label: same bytes
    assert get("7") != get("2")                                  # same seed, another label: other bytes
    body = _ok(client.get("/samples", params={"model": COND, "n": 5, "seed": 3, "label": "7",
                                               "format": "json"})).json()
    assert body["labels"] == ["7"] * 5
    drawn = _ok(client.get("/samples", params={"model": COND, "n": 40, "seed": 3, "format": "json"})).json()
    assert len(set(drawn["labels"])) > 3                         # no label: classes drawn from the seed


def test_label_all_is_one_row_per_class(client: Any, models: dict[str, Registered]) -> None:
    png = Image.open(io.BytesIO(_ok(client.get("/samples", params={"model": COND, "n": 3, "seed": 1,
                                                                    "label": "all"})).content))
    pad, side = 2, 28
    assert png.size == (pad + 3 * (side + pad), pad + 10 * (side + pad))
    npy = np.load(io.BytesIO(_ok(client.get("/samples", params={"model": COND, "n": 3, "seed": 1, "label": "all",
                                                                "format": "npy"})).content))
    assert npy.shape == (30, 1, 28, 28)
    one = np.load(io.BytesIO(_ok(client.get("/samples", params={"model": COND, "n": 3, "seed": 1, "label": "4",
                                                                "format": "npy"})).content))
    np.testing.assert_array_equal(npy[12:15], one)               # row 4 is label=4 with the same z's
    _problem(client.get("/samples", params={"model": COND, "n": 200, "label": "all"}), 422, "n")


def test_bad_labels_are_422_naming_the_allowed_ones(client: Any, models: dict[str, Registered]) -> None:
    body = _problem(client.get("/samples", params={"model": COND, "label": "eleven"}), 422, "label")
    assert "0..9" in body["detail"] and "all" in body["detail"]
    body = _problem(client.get("/samples", params={"model": PLAIN, "label": "3"}), 422, "label")
    assert "unconditional" in body["detail"]
    _problem(client.get("/interpolate", params={"model": PLAIN, "z0": "1", "z1": "2", "label": "3"}), 422, "label")
    _problem(client.get("/interpolate", params={"model": COND, "z0": "1", "z1": "2"}), 422, "label")
    _problem(client.get("/interpolate", params={"model": COND, "z0": "1", "label0": "1"}), 422, "label1")
    _problem(client.get("/interpolate", params={"model": COND, "z0": "1", "label": "1", "label0": "2",
                                                "label1": "3"}), 422, "label")


def test_interpolate_with_a_fixed_label_or_between_labels(client: Any, models: dict[str, Registered]) -> None:
    def frames(**params: Any) -> np.ndarray:
        body = _ok(client.get("/interpolate", params={"model": COND, "steps": 4, "format": "json",
                                                      **params})).json()
        return np.stack([_data_url_pixels(u) for u in body["images"]])

    fixed = frames(z0="1", z1="2", label="5")
    sample = np.load(io.BytesIO(_ok(client.get("/samples", params={"model": COND, "n": 1, "seed": 1, "label": "5",
                                                                   "format": "npy"})).content))
    np.testing.assert_allclose(fixed[0] / 255.0, sample[0, 0], atol=1 / 255.0 + 1e-6)
    moving = frames(z0="1", label0="5", label1="8")              # z fixed at z0, c from 5 to 8
    np.testing.assert_array_equal(moving[0], fixed[0])
    end = np.load(io.BytesIO(_ok(client.get("/samples", params={"model": COND, "n": 1, "seed": 1, "label": "8",
                                                                "format": "npy"})).content))
    np.testing.assert_allclose(moving[-1] / 255.0, end[0, 0], atol=1 / 255.0 + 1e-6)


def test_encode_round_trip_on_the_models_own_sample(client: Any, models: dict[str, Registered]) -> None:
    sample = np.load(io.BytesIO(_ok(client.get("/samples", params={"model": CODED, "n": 1, "seed": 11,
                                                                   "format": "npy"})).content))[0, 0]
    pixels = np.round(sample * 255).astype(np.uint8)
    body = _ok(client.post("/encode", params={"model": CODED}, files={"image": ("x.png", _png(pixels))})).json()
    assert len(body["z"]) == 8 and body["label"] is None
    recon = _data_url_pixels(body["reconstruction"]) / 255.0
    other = np.load(io.BytesIO(_ok(client.get("/samples", params={"model": CODED, "n": 1, "seed": 12,
                                                                  "format": "npy"})).content))[0, 0]
    assert np.mean((recon - sample) ** 2) < 0.25 * np.mean((other - sample) ** 2)
    assert _data_url_pixels(body["image"]).shape == (28, 28)


def test_encode_takes_any_image_size_and_jpeg(client: Any, models: dict[str, Registered]) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (90, 60, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG")
    body = _ok(client.post("/encode", params={"model": COND, "label": "3"},
                           files={"image": ("x.jpg", out.getvalue())})).json()
    assert body["label"] == "3" and len(body["z"]) == 8


def test_encode_errors(client: Any, models: dict[str, Registered]) -> None:
    png = _png(np.zeros((28, 28), np.uint8))
    body = _problem(client.post("/encode", params={"model": PLAIN}, files={"image": ("x.png", png)}), 409)
    assert '"encoder": true' in body["detail"]
    _problem(client.post("/encode", params={"model": CODED}, files={"image": ("x.txt", b"not an image")}),
             422, "image")
    _problem(client.post("/encode", params={"model": COND}, files={"image": ("x.png", png)}), 422, "label")
    _problem(client.post("/encode", params={"model": CODED, "label": "1"}, files={"image": ("x.png", png)}),
             422, "label")
    _problem(client.post("/encode", params={"model": "nope"}, files={"image": ("x.png", png)}), 404)
