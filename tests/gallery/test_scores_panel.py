"""The gallery's sample-quality panel and sweep chart in a real browser: an unscored version says how to ask and
requests nothing (GET /scores would answer 404, a console error); a scored one shows the numbers and the class
histogram as bars; a sweep member's page draws every member on one chart."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import pytest

from tests.conftest import mnist_available, wait_for_job
from tests.gallery.browser import Page

TINY = {"dataset": "mnist", "preset": "quick", "iterations": 20, "g_hidden": [32], "d_hidden": [16],
        "batch_size": 32, "log_every": 10, "snapshot_every": 20}
KEY = {"X-API-Key": os.environ.get("GANSERVE_API_KEY", "")}


@pytest.fixture(scope="module", autouse=True)
def _mnist() -> None:
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")


def test_scores_panel(desktop: Page, api: httpx.Client, worker: Any) -> None:
    response = api.post("/jobs", json={"model": "gal-scores", "seed": 1, **TINY}, headers=KEY)
    assert wait_for_job(api, response.json()["id"])["status"] == "succeeded"
    page = desktop.open("?model=gal-scores&version=1&seed=1")
    page.wait_for_function("() => /no sample-quality scores/.test(document.querySelector('#scores-status').textContent)")
    assert page.eval_on_selector("#scores-histogram-figure", "e => e.hidden") is True
    asked = api.post("/scores", params={"model": "gal-scores", "version": 1}, headers=KEY)
    assert asked.status_code == 202, asked.text
    assert wait_for_job(api, asked.json()["job"]["id"], timeout=600)["status"] == "succeeded"
    page = desktop.open("?model=gal-scores&version=1&seed=1")
    page.wait_for_selector("#scores-histogram-figure:not([hidden])", timeout=60_000)
    assert page.eval_on_selector_all("#scores-histogram rect.sample-bar", "e => e.length") == 10
    assert page.eval_on_selector_all("#scores-histogram rect.test-bar", "e => e.length") == 10
    table = page.text_content("#scores-table") or ""
    assert "FD" in table and "KID" in table and "Classes covered" in table
    desktop.shot("14-scores-panel")


def test_sweep_members_on_one_chart(desktop: Page, api: httpx.Client, worker: Any) -> None:
    response = api.post("/jobs", json={"model": "gal-sweep", "seeds": [1, 2], **TINY}, headers=KEY)
    assert response.status_code == 202, response.text
    url = response.headers["Location"]
    deadline = time.monotonic() + 300
    while api.get(url).json()["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    page = desktop.open(f"?job={response.json()['id']}")
    page.wait_for_selector("#figure-sweep:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#chart-sweep path').length >= 2")
    assert "best: seed" in (page.text_content("#sweep-caption") or "")
    desktop.shot("15-sweep-chart")
