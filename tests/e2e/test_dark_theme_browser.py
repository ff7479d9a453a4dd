"""Streamlit's dark theme, forced by the operator's config, in real Chromium (issue 14):
Explore's and Compare's charts are not white boxes and their text reads on the dark page."""

from __future__ import annotations

import pytest

from harness import free_port, shot, start_app, stop_app, wait_for_app

pytestmark = pytest.mark.e2e

DARK = {"theme.base": "dark", "theme.backgroundColor": "#0e1117",
        "theme.textColor": "#fafafa", "theme.secondaryBackgroundColor": "#262730"}
# The chart's background as drawn and the luminance of its darkest grey text (text in a
# colour, a cell's, keeps it): on a dark page the one is the page's and the other light.
MEASURE = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
  const bg = gd.querySelector('.main-svg .bg');
  const rgb = c => c.match(/\\d+(\\.\\d+)?/g).map(Number);
  const grey = m => Math.max(...m.slice(0, 3)) - Math.min(...m.slice(0, 3)) < 30;
  const lum = m => (0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]) / 255;
  const texts = Array.from(gd.querySelectorAll('.gtitle, .annotation-text, .xtick text, .ytick text'))
      .map(t => rgb(getComputedStyle(t).fill)).filter(grey).map(lum);
  const paper = getComputedStyle(gd.querySelector('.main-svg')).backgroundColor;
  return {paper, bg: bg ? getComputedStyle(bg).fill : null, darkestText: Math.min(...texts)};
})"""


@pytest.fixture(scope="module")
def dark_url(artifacts):
    port = free_port()
    proc = start_app(port, artifacts / "streamlit-dark.log", options=DARK)
    yield f"http://127.0.0.1:{port}"
    stop_app(proc)


@pytest.mark.parametrize("path", ["/?task=agreement&cell=lstm", "/compare?task=agreement"])
def test_charts_follow_the_dark_theme(page, dark_url, artifacts, path):
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(dark_url + path)
    wait_for_app(page)
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    page.wait_for_timeout(1000)
    for chart in page.evaluate(MEASURE):
        assert chart["paper"] in ("rgba(0, 0, 0, 0)", "transparent"), chart
        assert chart["darkestText"] > 0.6, chart  # light text only (white is 1)
    shot(page, artifacts, f"dark-{'compare' if 'compare' in path else 'explore'}-1920")
    assert not page.js_errors


def test_a_visitor_whose_system_prefers_dark_gets_charts_for_the_light_page(browser, app_url, artifacts):
    """The app's config names a light theme, so the page is light whatever the visitor's system
    prefers. Streamlit reported "dark" for such a visitor on the session's first run (its issue
    #11920), and the chart was drawn for a dark page: light text on white."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="dark")
    page = context.new_page()
    try:
        page.goto(app_url + "/?task=agreement&cell=lstm")
        wait_for_app(page)
        page.wait_for_selector(".js-plotly-plot", timeout=90_000)
        page.wait_for_timeout(500)
        background = page.evaluate(
            "() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
        assert background == "rgb(255, 255, 255)"  # the config's light page
        for chart in page.evaluate(MEASURE):
            assert chart["darkestText"] < 0.4, chart  # dark text, as on any light page
        shot(page, artifacts, "system-dark-explore-1280")
    finally:
        context.close()
