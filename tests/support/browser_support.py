"""Headless Chromium for the dashboard tests (Debian's, driven by Playwright)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("AVIP_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
NO_CHROMIUM = f"no Chromium at {CHROMIUM}: `devstack/devstack.sh up chromium`"


def have_chromium() -> bool:
    return Path(CHROMIUM).is_file()


@contextmanager
def chromium_page() -> Iterator[Any]:
    """One page of a fresh headless Chromium (1280x900, 60 s default timeout)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    page.locator(".avip-token input").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("signed in as").wait_for()
