"""The Compare page in real Chromium: three cells on one cursor that plays and scrubs in the
browser, a task switch, bad input, and never an exception on the page."""

from __future__ import annotations

import re

import pytest

from harness import choose_option, shot, wait_for_app, wait_until

pytestmark = pytest.mark.e2e

CHART = ".js-plotly-plot"


@pytest.fixture(scope="module")
def compare_url(app_url):
    """The Compare page, as app.py's navigation serves it."""
    return f"{app_url}/compare"


def real_errors(page) -> list[str]:
    """Uncaught errors on the page, less plotly.js's rejected promise when Pause or the slider
    interrupts a running animation (it rejects with `undefined`: nothing went wrong)."""
    return [e for e in page.js_errors if e != "undefined"]


# The x of every column's time cursor.
CURSORS = """() => [...document.querySelectorAll('.js-plotly-plot')]
                   .flatMap(gd => (gd._fullData || []).filter(t => t.name === 'cursor'))
                   .map(t => t.x[0])"""


def cursors(page) -> list[float]:
    return page.evaluate(CURSORS)


def settled_cursors(page, lowest: float, what: str) -> list[float]:
    """Wait until every column's cursor stands at one x of at least `lowest`; those x."""
    wait_until(page, f"""() => {{ const x = ({CURSORS})();
                                  return x.length && x[0] >= {lowest}
                                         && x.every(v => v === x[0]); }}""", what)
    return cursors(page)


def readouts(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('.js-plotly-plot')]
                 .flatMap(gd => (gd._fullData || []).filter(t => t.name === 'readout'))
                 .map(t => t.text[0])""")


def three_cells_play_and_scrub_on_one_cursor(page, artifacts) -> None:
    """On the Compare page as it opens (the adding task)."""
    chart = page.locator(CHART).first
    chart.wait_for(timeout=60_000)
    # the table is drawn after the chart: on a busy server, a moment later
    page.get_by_text("GRU ÷ LSTM").first.wait_for(timeout=60_000)
    body = page.inner_text("body")
    for text in ("RNN (vanilla)", "LSTM", "GRU", "GRU ÷ LSTM", "Peak training memory"):
        assert text in body
    assert page.locator(f"{CHART} image").count() >= 5  # h x 3, forget f, update z
    assert cursors(page) == [0, 0, 0]
    # Play: every column's cursor moves, together, with no server round trip
    chart.locator(".updatemenu-button").nth(0).click()
    wait_until(page, f"() => ({CURSORS})()[0] > 0", "Play moves the cursors")
    chart.locator(".updatemenu-button").nth(1).click()  # pause
    settled_cursors(page, 1, "paused, every column's cursor stands on the same step")
    # Scrub: click three quarters along the slider rail
    rail = chart.locator(".slider-rail-rect").bounding_box()
    page.mouse.click(rail["x"] + rail["width"] * 0.75, rail["y"] + rail["height"] / 2)
    scrubbed = settled_cursors(page, 30, "the cursors follow the slider together")
    assert scrubbed[0] <= 45, scrubbed
    # the gradient readouts follow the cursor: the RNN's has vanished, the LSTM's has not
    values = readouts(page)
    assert len(values) == 3
    assert real_errors(page) == []
    chart.scroll_into_view_if_needed()
    chart.screenshot(path=str(artifacts / "compare-adding-scrubbed.png"))
    decay = page.locator(CHART).nth(1)
    decay.scroll_into_view_if_needed()
    assert "per step" in decay.inner_text()
    decay.screenshot(path=str(artifacts / "compare-adding-decay.png"))


def switch_task_then_bad_input_keeps_the_view(page, artifacts) -> None:
    """On the Compare page, its charts drawn; the page reruns (last: it shows bad input)."""
    choose_option(page, page.locator('[data-testid="stSelectbox"]').first,
                  re.compile("agreement", re.I))
    page.wait_for_url(re.compile("task=agreement"), timeout=60_000)  # the link follows
    wait_for_app(page)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3",
                           timeout=60_000)
    page.wait_for_timeout(1000)  # let Streamlit finish mounting the new charts
    accuracy = page.locator(CHART).nth(2)
    accuracy.scroll_into_view_if_needed()
    assert "words from subject to verb" in accuracy.inner_text()
    accuracy.screenshot(path=str(artifacts / "compare-agreement-accuracy.png"))
    chart = page.locator(CHART).first
    chart.scroll_into_view_if_needed()
    rail = chart.locator(".slider-rail-rect").bounding_box()  # scrub to the middle
    page.mouse.click(rail["x"] + rail["width"] * 0.5, rail["y"] + rail["height"] / 2)
    settled_cursors(page, 6, "the cursors follow the slider to the middle together")
    chart.screenshot(path=str(artifacts / "compare-agreement.png"))
    # typed text with a word the models never saw: a clear message, the last good view stays
    page.get_by_text("my own text / numbers").click()
    box = page.get_by_role("textbox", name="Your input")
    box.wait_for(timeout=60_000)
    wait_for_app(page)
    box.fill("the zebras near the house")
    page.keyboard.press("Control+Enter")
    page.locator('[data-testid="stAlert"]', has_text="zebras").wait_for(timeout=60_000)
    wait_for_app(page)
    alert = page.locator('[data-testid="stAlert"]', has_text="zebras").inner_text()
    assert "zebras" in alert and "last good view" in alert
    assert page.locator(CHART).count() >= 3
    assert real_errors(page) == []
    shot(page, artifacts, "compare-bad-input")


def test_three_cells_play_and_scrub_then_switch_task_then_bad_input_keeps_the_view(
        page, compare_url, artifacts):
    """On the Compare page as it opens: three cells play and scrub on one cursor; then a switch
    of task, a scrub, and bad typed input, which keeps the view."""
    page.goto(compare_url)
    wait_for_app(page)
    three_cells_play_and_scrub_on_one_cursor(page, artifacts)
    # the new task's charts open where the cursor was: back at step 0, as on a fresh page, so
    # that only the scrub can move the cursors on from there
    page.keyboard.press("Home")
    wait_until(page, f"""() => {{ const x = ({CURSORS})();
                                  return x.length === 3 && x.every(v => v === 0); }}""",
               "Home takes every column's cursor to step 0")
    switch_task_then_bad_input_keeps_the_view(page, artifacts)
