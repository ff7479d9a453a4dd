"""Real-browser fixtures: the app under `streamlit run`, and Debian's Chromium via Playwright.

Playwright cannot download browsers here, so we launch /usr/bin/chromium directly. The app is
started once per test session on a free localhost port; each test gets a fresh page.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import (ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, TrackingBrowser, free_port, start_app,
                     stop_app)


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (CI installs Debian's chromium)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def app_url(artifacts):
    port = free_port()
    proc = start_app(port, artifacts / "streamlit-e2e.log")
    yield f"http://127.0.0.1:{port}"
    stop_app(proc)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield TrackingBrowser(b)
        b.close()


@pytest.fixture
def page(browser, artifacts, request):
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.js_errors = errors
    yield pg
    # Keep the last view of every test for a human to look at.
    try:
        pg.screenshot(path=str(artifacts / f"{request.node.name}-final.png"), full_page=True)
    except Exception:
        pass
    context.close()
