"""The gallery's class picker and drawing pad in real Chromium: a conditional model with an encoder shows one
class, or one row per class; strokes drawn with the mouse are encoded (the reconstruction appears) and two
drawings make an interpolation strip. A model without them shows neither and never calls /encode."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.factories import register_exported, register_model, tiny_config
from tests.gallery.browser import Page
from tests.gallery.test_gallery import wait_grid

COND = "gal-cond"
PLAIN = "gal-plain"


@pytest.fixture(scope="module")
def registered(api: httpx.Client) -> None:
    register_exported(COND, tiny_config(conditional=True, encoder=True))
    register_model(PLAIN, latent_dim=8)


def draw(page: Any, strokes: list[list[tuple[int, int]]]) -> None:
    """Mouse strokes on the pad, in its 280 x 280 canvas coordinates."""
    box = page.locator("#pad").bounding_box()
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()


def test_class_picker_shows_one_class_or_one_row_per_class(desktop: Page, registered: None) -> None:
    page = desktop.open(f"?model={COND}&seed=5")
    assert len(wait_grid(page)) == 64
    assert page.is_visible("#label-label")
    page.select_option("#label", "all")
    page.wait_for_url(re.compile(r"label=all"))
    tiles = wait_grid(page, 80)                                  # 10 classes x 8 samples
    assert page.get_attribute("#grid", "aria-label") == "one row of 8 samples per class"
    desktop.shot("20-one-row-per-class")
    page.select_option("#label", "7")
    page.wait_for_url(re.compile(r"label=7"))
    sevens = wait_grid(page, 64)
    assert [t["src"] for t in sevens] != [t["src"] for t in tiles[:64]]
    # Two picked samples interpolate between their z's and their classes.
    page.click("#grid .tile >> nth=0")
    page.click("#grid .tile >> nth=9")
    page.wait_for_function("() => document.querySelector('#interp-strip').naturalWidth > 0")
    assert page.input_value("#label0") == "7" and page.input_value("#label1") == "7"


def test_drawing_is_encoded_and_two_drawings_interpolate(desktop: Page, registered: None) -> None:
    page = desktop.open(f"?model={COND}")
    wait_grid(page)
    assert page.is_visible("#draw-panel") and page.is_visible("#draw-label-wrap")
    page.select_option("#draw-label", "1")
    draw(page, [[(140, 40), (142, 120), (140, 240)]])            # a 1
    page.click("#draw-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#draw-recon').naturalWidth === 28")
    assert page.evaluate("() => document.querySelector('#draw-input').naturalWidth") == 28
    assert "Encoded into A" in page.text_content("#draw-status")  # type: ignore[operator]
    assert page.input_value("#z0").count(",") == 7               # the tiny model's 8 latent values
    desktop.shot("21-drawing-encoded")
    page.click("#draw-clear")
    page.select_option("#draw-label", "0")
    draw(page, [[(140, 50), (80, 140), (140, 230), (200, 140), (140, 50)]])   # a 0
    page.click("#draw-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#interp-strip').naturalWidth > 0"
                           " && !document.querySelector('#interp-out').hidden")
    assert page.input_value("#label0") == "1" and page.input_value("#label1") == "0"
    desktop.shot("22-drawings-interpolated")


def test_a_model_without_encoder_or_classes_shows_neither(desktop: Page, registered: None) -> None:
    asked: list[str] = []
    desktop.page.on("request", lambda r: asked.append(r.url) if "/encode" in r.url else None)
    page = desktop.open(f"?model={PLAIN}")
    wait_grid(page)
    assert not page.is_visible("#draw-panel") and not page.is_visible("#label-label")
    assert not page.is_visible("#interp-classes")
    page.click("#grid .tile >> nth=0")
    page.click("#grid .tile >> nth=1")
    page.wait_for_function("() => document.querySelector('#interp-strip').naturalWidth > 0")
    assert asked == []
