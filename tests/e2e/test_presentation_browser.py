"""Presentation mode in real Chromium (issue 14): with present=1 the whole animated figure is
on one 16:9 screen at 1280 x 720 and 1920 x 1080, the gradient row in view and nothing to
scroll, its text at least 18 px at 1920 x 1080 and smaller in a smaller window, and it plays."""

from __future__ import annotations

import pytest

from harness import shot, wait_for_app, wait_until

pytestmark = pytest.mark.e2e

CHART = ".js-plotly-plot"
# The figure as drawn: its box on screen, the stage scale, the smallest text as the eye sees
# it (its font size times the scale), where its gradient row is, and whether the page scrolls.
MEASURE = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const box = gd.closest('[class*="st-key-"]');
  const r = gd.getBoundingClientRect();
  const scale = parseFloat(box.dataset.stageScale || 'NaN');
  const sizes = Array.from(gd.querySelectorAll('text'))
      .map(t => parseFloat(getComputedStyle(t).fontSize)).filter(f => f >= 4);
  const grad = Array.from(gd.querySelectorAll('.annotation-text, .gtitle, text'))
      .find(t => (t.textContent || '').includes('gradient norms'));
  const main = document.querySelector('[data-testid="stMain"]');
  return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, scale,
          minText: Math.min(...sizes) * scale, gradTop: grad ? grad.getBoundingClientRect().top : -1,
          scrolls: main.scrollHeight - main.clientHeight,
          sidebar: !!document.querySelector('[data-testid="stSidebar"]:not([style*="none"])')
                   && getComputedStyle(document.querySelector('[data-testid="stSidebar"]')).display !== 'none'};
}"""
CURSOR_X = """() => { const gd = document.querySelector('.js-plotly-plot');
                      return gd._fullData.filter(t => t.yaxis === 'y99')[0].x[0]; }"""


def fits(page, path: str, width: int, height: int, artifacts) -> None:
    """The figure as drawn now fits a `width` x `height` window (the page's viewport)."""
    m = page.evaluate(MEASURE)
    assert not m["sidebar"]
    assert m["left"] >= 0 and m["right"] <= width and m["bottom"] <= height, m
    assert m["scrolls"] <= 2, m  # nothing below the fold
    if "compare" not in path:
        assert 0 < m["gradTop"] < height, m  # the gradient row is in view
    if width == 1920:
        assert m["minText"] >= 18, m
    view = "explore" if "compare" not in path else "compare" + path.partition("show=")[2]
    shot(page, artifacts, f"present-{view}-{width}")


def open_presented(page, url: str) -> None:
    """Open a presented view in a 1280 x 720 window and wait until its figure is fitted."""
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    wait_for_app(page)
    page.wait_for_selector(CHART, timeout=90_000)
    wait_until(page, "() => !!document.querySelector('[data-stage-scale]')",
               "the figure is fitted to the window")


@pytest.mark.parametrize("path", ["/?task=agreement&cell=lstm", "/compare?task=adding",
                                  "/compare?task=agreement&show=accuracy"])
def test_the_presented_figure_fits_the_screen(page, app_url, artifacts, path):
    """Opened at 1280 x 720, then the window made 1920 x 1080 (a laptop's screen, then the
    projector's): the figure is fitted to each, as it is when opened at that size (ui/
    presentation.py fits it on load and on every resize, with the same code)."""
    open_presented(page, f"{app_url}{path}&present=1")
    page.wait_for_timeout(500)
    fits(page, path, 1280, 720, artifacts)
    scale = page.evaluate("() => document.querySelector('[data-stage-scale]').dataset.stageScale")
    page.set_viewport_size({"width": 1920, "height": 1080})
    wait_until(page, """scale => document.querySelector('[data-stage-scale]')
                                .dataset.stageScale !== scale""",
               "the figure is fitted to the larger window", arg=scale)
    page.wait_for_timeout(500)
    fits(page, path, 1920, 1080, artifacts)
    assert not page.js_errors


def test_a_presented_figure_plays(page, app_url):
    open_presented(page, f"{app_url}/?task=adding&cell=lstm&present=1&t=2")
    assert page.evaluate(CURSOR_X) == 2
    page.locator(f"{CHART} .updatemenu-button").first.click()  # ▶ Play, scaled as it is
    wait_until(page, f"() => ({CURSOR_X})() >= 6", "the cursor plays", timeout_ms=20_000)
    page.get_by_role("button", name="Exit presentation").click()
    page.get_by_text("gatescope · Explore").wait_for(timeout=30_000)
    assert "present" not in page.url
    assert not page.js_errors


@pytest.mark.parametrize("path, checked", [
    ("/?task=adding&cell=gru&sample=3&t=12", {".st-key-explore_cell": "GRU",
                                             ".st-key-explore_sample": "3",
                                             ".st-key-explore_t": "12"}),
    ("/compare?task=adding&sample=5&t=7", {".st-key-compare_sample": "5",
                                          ".st-key-compare_t": "7"})])
def test_leaving_the_presentation_shows_the_page_as_it_was(page, app_url, path, checked):
    """Left, the page's own figure is drawn at the page's width, unscaled: the stage's fitting
    had gone on, and drew it 1880 px wide at a quarter of its size. A presented page draws no
    sidebar (it is hidden); left, its widgets are drawn again and show the view's choices:
    Streamlit had kept their values through the presented runs while the browser let the
    widgets go, and drawn again they showed their defaults (an RNN, sample 0) beside a figure of
    the GRU on sample 3."""
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{app_url}{path}")
    wait_for_app(page)
    page.get_by_role("button", name="Present").click()
    wait_until(page, "() => !!document.querySelector('[data-stage-scale]')", "presented")
    assert not page.locator('[data-testid="stSidebar"] [data-testid="stElementContainer"]').count()
    page.get_by_role("button", name="Exit presentation").click()
    wait_for_app(page)
    page.locator(next(iter(checked))).wait_for(timeout=30_000)
    wait_until(page, "() => !document.querySelector('[data-stage-scale]')", "the stage let go")
    figure = page.evaluate("""() => { const gd = document.querySelector('.js-plotly-plot');
        return {drawn: Math.round(gd.getBoundingClientRect().width), laid: gd.layout.width,
                scaled: gd.style.transform}; }""")
    assert figure["drawn"] == figure["laid"] < 1280 and not figure["scaled"], figure
    for box, value in checked.items():
        shown = page.locator(box)
        radio = shown.locator("input:checked")
        if radio.count():  # a radio: the label of the checked option
            assert radio.locator("xpath=ancestor::label[1]").inner_text().strip() == value, box
        else:
            assert shown.locator("input").input_value() == value, box
    assert not page.js_errors
