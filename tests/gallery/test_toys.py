"""Toy models in the gallery (real Chromium, live API): their samples and interpolation paths are points,
drawn as plots in data space, and switching between toy and image models leaves no console error.

The generators are small hand-built ONNX graphs registered like tests/factories.py's image ones, with outputs
near each toy's data so the plots look like a training run's: a line onto N(4, 0.5^2) and a circle through
the ring's eight modes.
"""

from __future__ import annotations

import math
import re
from typing import Any

import httpx
import numpy as np
import pytest

from tests.factories import Registered, register_model
from tests.gallery.browser import Page

UNIFORM = {"kind": "uniform", "low": -1.0, "high": 1.0}
TOY_POINTS = 512  # what the page asks for when the URL names no n


def _onnx(nodes: list[Any], weights: dict[str, np.ndarray], latent_dim: int, out_dim: int) -> bytes:
    # Lazy: onnx comes with the worker extra, as in bench/serve_model.py.
    from onnx import TensorProto, checker, helper, numpy_helper

    graph = helper.make_graph(nodes, "generator",
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", latent_dim])],
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", out_dim])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ganserve-tests")
    model.ir_version = 8
    checker.check_model(model)
    return model.SerializeToString()


def line_onnx() -> bytes:
    """x = 3.6 + 0.9 z: z ~ U(-1, 1) lands on [2.7, 4.5], over the left part of N(4, 0.5^2)."""
    from onnx import helper

    return _onnx([helper.make_node("Gemm", ["z", "W", "b"], ["x"], transB=1)],
                 {"W": [[0.9]], "b": [3.6]}, latent_dim=1, out_dim=1)


def circle_onnx() -> bytes:
    """x = (2 + 0.05 z1) (cos pi z0, sin pi z0): the whole circle of radius 2, modes and the gaps between."""
    from onnx import helper

    nodes = [helper.make_node("Gemm", ["z", "Wa", "ba"], ["angle"], transB=1),
             helper.make_node("Gemm", ["z", "Wr", "br"], ["radius"], transB=1),
             helper.make_node("Cos", ["angle"], ["cos"]), helper.make_node("Sin", ["angle"], ["sin"]),
             helper.make_node("Concat", ["cos", "sin"], ["unit"], axis=1),
             helper.make_node("Mul", ["unit", "radius"], ["x"])]
    weights = {"Wa": [[math.pi, 0.0]], "ba": [0.0], "Wr": [[0.0, 0.05]], "br": [2.0]}
    return _onnx(nodes, weights, latent_dim=2, out_dim=2)


@pytest.fixture(scope="module")
def models(stack: None) -> dict[str, Registered]:
    return {
        "1d": register_model("toy-line", latent_dim=1, image_shape=(1, 1, 1), dataset="toy-1d", noise=UNIFORM,
                             onnx_bytes=line_onnx()),
        "2d": register_model("toy-circle", latent_dim=2, image_shape=(1, 1, 2), dataset="toy-ring",
                             noise=UNIFORM, onnx_bytes=circle_onnx()),
        "grid": register_model("toy-squares", latent_dim=2, image_shape=(1, 1, 2), dataset="toy-grid",
                               noise=UNIFORM, onnx_bytes=circle_onnx()),
        "image": register_model("mnist-shaped", latent_dim=16),
    }


def plot_marks(page: Any, selector: str) -> int:
    return int(page.eval_on_selector_all(selector, "els => els.length"))


def wait_histogram(page: Any, n: int) -> None:
    page.wait_for_function("n => document.querySelectorAll('#grid svg.plot .rug line.sample').length === n", arg=n)
    assert plot_marks(page, "#grid svg.plot path.g-hist") == 1
    assert plot_marks(page, "#grid svg.plot path.data-density") == 1  # the toy's exact p_data


def wait_scatter(page: Any, n: int, model: str = "toy-circle", modes: int = 8) -> list[str]:
    page.wait_for_function("([n, model]) => document.getElementById('grid').getAttribute('aria-label')"
                           ".includes(` of ${model} v`) && "
                           "document.querySelectorAll('#grid svg.plot circle.sample').length === n", arg=[n, model])
    assert plot_marks(page, "#grid svg.plot .modes path") == modes  # a cross on each of the data's modes
    return page.eval_on_selector_all("#grid svg.plot circle.sample", "els => els.map(e => e.getAttribute('cx'))")


def wait_path(page: Any, model: str, steps: int = 10) -> None:
    page.wait_for_function("([model, steps]) => document.getElementById('interp-plot').getAttribute('aria-label')"
                           "?.includes(` of ${model} v`) && "
                           "document.querySelectorAll('#interp-plot circle.step').length === steps",
                           arg=[model, steps])


def test_toy_and_image_models_in_turn(desktop: Page, models: dict[str, Registered], api: httpx.Client) -> None:
    toys = api.get("/gallery/options").json()["toys"]
    assert toys["toy-1d"]["means"] == [[4.0]] and toys["toy-1d"]["std"] == 0.5 and len(toys["toy-ring"]["means"]) == 8
    page = desktop.open("?model=toy-line")
    wait_histogram(page, TOY_POINTS)
    page.wait_for_url(re.compile(rf"model=toy-line&version=1&seed=\d+&n={TOY_POINTS}"))
    assert f"{TOY_POINTS} points" in (page.text_content("#samples-status") or "")
    assert page.is_visible("#n-label") and not page.is_visible("#grid-hint[hidden]")
    desktop.shot("20-toy-1d-histogram")
    page.fill("#z0", "1")
    page.fill("#z1", "2")
    page.click("#interp-form button[type=submit]")
    wait_path(page, "toy-line")
    assert page.is_visible("#interp-path") and not page.is_visible("#interp-strip")
    desktop.shot("21-toy-1d-interpolation")

    page.select_option("#model", "toy-circle")
    wait_scatter(page, TOY_POINTS)
    # The click on each point itself: points of the random seed overlap, and a click at a point's centre can land
    # on another drawn over it (twice on the same one, no path).
    page.dispatch_event("#grid svg.plot circle.sample >> nth=5", "click")
    page.dispatch_event("#grid svg.plot circle.sample >> nth=300", "click")
    wait_path(page, "toy-circle")
    assert plot_marks(page, "#grid svg.plot circle.sample[data-pick]:not([data-pick=''])") == 2
    assert plot_marks(page, "#interp-plot path.interp-path") == 1
    desktop.shot("22-toy-2d-scatter-and-path")

    page.select_option("#model", "mnist-shaped")
    page.wait_for_function("() => [...document.querySelectorAll('#grid .tile img')].filter(i => i.naturalWidth === 28)"
                           ".length === 64")
    assert not page.is_visible("#n-label") and not re.search(r"[?&]n=", page.url)
    assert page.get_attribute("#grid", "aria-label") == "8 by 8 samples"
    desktop.shot("23-image-model-after-toys")
    page.go_back()  # the toy's plot is one Back away
    wait_scatter(page, TOY_POINTS)
    page.select_option("#model", "toy-squares")
    wait_scatter(page, TOY_POINTS, model="toy-squares", modes=25)


def test_a_toy_permalink_reproduces_the_plot(desktop: Page, models: dict[str, Registered]) -> None:
    page = desktop.open("?model=toy-circle&version=1&seed=42&n=200")
    first = wait_scatter(page, 200)
    assert page.input_value("#n") == "200" and page.input_value("#seed") == "42"
    again = desktop.open("?model=toy-circle&version=1&seed=42&n=200")
    assert wait_scatter(again, 200) == first
    # Row i of the noise depends only on (seed, i): asking for more points keeps the first 200.
    again.fill("#n", "300")
    again.click("#sample-form button[type=submit]")
    again.wait_for_url(re.compile(r"seed=42&n=300"))
    assert wait_scatter(again, 300)[:200] == first


def test_toy_nearest_training_points(desktop: Page, models: dict[str, Registered]) -> None:
    page = desktop.open("?model=toy-circle&version=1&seed=3&n=64&neighbors=1")
    page.wait_for_function("() => document.querySelectorAll('#grid svg.plot .neighbours line.link').length === 64")
    desktop.shot("24-toy-2d-neighbours")
    page = desktop.open("?model=toy-line&version=1&seed=3&n=64&neighbors=1")
    page.wait_for_function("() => document.querySelectorAll('#grid svg.plot .rug line.neighbour').length === 64")


def test_toy_plot_fits_a_phone(phone: Page, models: dict[str, Registered]) -> None:
    page = phone.open("?model=toy-circle&version=1&seed=5")
    wait_scatter(page, TOY_POINTS)
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert page.eval_on_selector("#grid svg.plot", "e => e.getBoundingClientRect().width") >= 300
    phone.shot("25-toy-2d-phone")
