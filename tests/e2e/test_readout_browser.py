"""Hovering a map reads unit, step and value (issue #14), in a real browser: the box under the
pointer names the map, the unit and step the pointer is on and the word there, with the value
the trace download records at that place (rounded as the diagram rounds), on the page and on
a presented (scaled) figure."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from core.figures.readout import shown
from harness import wait_for_app

pytestmark = pytest.mark.e2e

VIEW = "/?task=agreement&cell=lstm&t=3"
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'
READOUT = ".gatescope-readout"
#: The window point of (map, unit, step) on the chart, from the chart's own axes, scrolled
#: into the window first (a download button below the chart scrolls it away).
POINT = """([k, unit, step]) => {
  const gd = document.querySelector('.js-plotly-plot');
  const sub = JSON.parse(gd.layout.meta).gatescope_maps[0], map = sub.maps[k];
  const xa = gd._fullLayout['xaxis' + sub.x.slice(1)], ya = gd._fullLayout['yaxis' + sub.y.slice(1)];
  const at = () => {
    const r = gd.getBoundingClientRect(), zoom = r.width / gd.offsetWidth;
    return {x: r.left + (xa._offset + xa.c2p(step)) * zoom,
            y: r.top + (ya._offset + ya.c2p(map.base + unit)) * zoom};
  };
  const first = at();
  if (first.y < 0 || first.y > window.innerHeight) {
    gd.closest('section, [data-testid="stMain"]') ?.scrollBy(0, first.y - window.innerHeight / 2);
    window.scrollBy(0, first.y - window.innerHeight / 2);
  }
  return at();
}"""
# (map index in Explore's LSTM order, its array in the trace download, unit, step)
PLACES = [(0, "hidden", 0, 0), (1, "cell", 17, 5), (3, "gate_forget", 40, 11), (5, "gate_output", 63, 22)]
NAMES = ["hidden state h", "cell state c", "input gate i", "forget gate f", "cell candidate g",
         "output gate o"]


def downloaded_trace(page) -> dict:
    with page.expect_download() as dl:
        page.get_by_role("button", name="Trace (.npz)").click()
    with open(dl.value.path(), "rb") as f:
        return dict(np.load(io.BytesIO(f.read())))


def read_at(page, k: int, unit: int, step: int, tries: int = 5) -> str:
    """The readout with the pointer on (map k, unit, step). The place is measured again on
    each try: a presented figure is rescaled to the window once it is drawn."""
    box = page.locator(READOUT)
    for attempt in range(tries):
        point = page.evaluate(POINT, [k, unit, step])
        page.mouse.move(point["x"] - 3, point["y"])  # a move onto the place, not a jump
        page.mouse.move(point["x"], point["y"], steps=3)
        try:
            box.wait_for(state="visible", timeout=2_000)
            return box.inner_text()
        except Exception:  # Playwright's TimeoutError
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def expected(npz: dict, array: str, unit: int, step: int) -> str:
    return shown(float(npz[array][0, 0, step, unit]))


def words(npz: dict, page) -> list[str]:
    return page.evaluate("() => JSON.parse(document.querySelector('.js-plotly-plot')"
                         ".layout.meta).gatescope_maps[0].tokens")


def test_hovering_a_map_reads_its_unit_step_word_and_value(page, app_url):
    page.goto(app_url + VIEW)
    wait_for_app(page)
    page.locator(f"{CHART} image").first.wait_for(timeout=60_000)
    npz = downloaded_trace(page)
    tokens = words(npz, page)
    for k, array, unit, step in PLACES:
        text = read_at(page, k, unit, step)
        assert text.splitlines() == [
            f"{NAMES[k]}: {expected(npz, array, unit, step)}",
            f"unit {unit} · step t = {step} “{tokens[step]}”"], text
    # off the maps (the gradient row's title, below them) nothing is read out
    chart = page.locator(CHART).first.bounding_box()
    page.mouse.move(chart["x"] + 5, chart["y"] + 5)
    page.locator(READOUT).wait_for(state="hidden", timeout=5_000)


def test_a_presented_figure_reads_the_same_values_where_it_is_scaled(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(app_url + VIEW)
        wait_for_app(page)
        page.locator(f"{CHART} image").first.wait_for(timeout=60_000)
        npz = downloaded_trace(page)
        page.goto(app_url + VIEW + "&present=1")
        wait_for_app(page)
        page.locator(f"{CHART} image").first.wait_for(timeout=60_000)
        zoom = page.evaluate("() => { const gd = document.querySelector('.js-plotly-plot');"
                             " return gd.getBoundingClientRect().width / gd.offsetWidth; }")
        assert zoom < 0.9  # the stage figure is scaled down to a 1280-px window
        k, array, unit, step = PLACES[2]
        text = read_at(page, k, unit, step)
        assert re.match(rf"{NAMES[k]}: {re.escape(expected(npz, array, unit, step))}\n"
                        rf"unit {unit} · step t = {step} ", text), text
        size = page.evaluate(f"() => parseFloat(document.querySelector('{READOUT}').style.fontSize)")
        assert size >= 18.5  # a projector's text, before the scaling
    finally:
        context.close()


def test_every_compare_column_reads_its_own_maps(page, app_url):
    from core.figures.readout import decoded_values

    page.goto(app_url + "/compare?task=agreement")
    wait_for_app(page)
    page.locator(f"{CHART} image").first.wait_for(timeout=60_000)
    subs = page.evaluate("() => JSON.parse(document.querySelector('.js-plotly-plot')"
                         ".layout.meta).gatescope_maps")
    assert [m["name"] for s in subs for m in s["maps"]] == [
        "RNN (vanilla) · hidden state h", "LSTM · hidden state h", "LSTM · forget gate f",
        "GRU · hidden state h", "GRU · update gate z"]
    for index, unit, step in ((2, 9, 4), (4, 30, 12)):
        sub = subs[index]
        point = page.evaluate("""([i, unit, step]) => {
          const gd = document.querySelector('.js-plotly-plot');
          const sub = JSON.parse(gd.layout.meta).gatescope_maps[i];
          const xa = gd._fullLayout['xaxis' + sub.x.slice(1)], ya = gd._fullLayout['yaxis' + sub.y.slice(1)];
          gd.scrollIntoView({block: 'center'});
          const r = gd.getBoundingClientRect();
          return {x: r.left + xa._offset + xa.c2p(step), y: r.top + ya._offset + ya.c2p(unit)};
        }""", [index, unit, step])
        page.mouse.move(point["x"] - 3, point["y"])
        page.mouse.move(point["x"], point["y"], steps=3)
        box = page.locator(READOUT)
        box.wait_for(state="visible", timeout=5_000)
        value = decoded_values(sub["maps"][0], sub["units"], sub["steps"])[unit, step]
        assert box.inner_text().splitlines() == [
            f"{sub['maps'][0]['name']}: {shown(value)}",
            f"unit {unit} · step t = {step} “{sub['tokens'][step]}”"]
