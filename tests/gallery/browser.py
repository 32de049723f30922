"""A browser page for the gallery tests: Debian's Chromium driven by Playwright, recording console errors.

Screenshots go to test-artifacts/gallery/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "gallery"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


class Page:
    """A fresh browser page that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, base: str, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def open(self, query: str = "") -> Any:
        self.page.goto(f"{self.base}/{query}")
        self.page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        return self.page

    def shot(self, name: str, full_page: bool = True) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
