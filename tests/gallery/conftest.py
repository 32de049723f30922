"""Fixtures of the gallery's browser tests: a live API client, Chromium, and pages that fail a test on any
console error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gallery.browser import ARTIFACTS, CHROMIUM, DESKTOP, PHONE, Page


@pytest.fixture(scope="module")
def api(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[dev]')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def desktop(browser: Any, live_server: str) -> Iterator[Page]:
    page = Page(browser, live_server, DESKTOP)
    yield page
    page.context.close()
    assert not page.errors, page.errors


@pytest.fixture
def phone(browser: Any, live_server: str) -> Iterator[Page]:
    page = Page(browser, live_server, PHONE)
    yield page
    page.context.close()
    assert not page.errors, page.errors
