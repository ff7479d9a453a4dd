"""The Interpretability lab in real Chromium at 1280×720: it measures the shipped agreement LSTM
(a dot per gate unit, the memory charts, the unit search, an intervention), runs an ablation
sweep, and a unit clicked in the saturation scatter opens in Explore. Screenshots land in
artifacts/ (interpret-*.png) for a person to look at."""

from __future__ import annotations

import pytest

from harness import shot, wait_for_app, wait_until

pytestmark = pytest.mark.e2e

CHART = ".js-plotly-plot"
SATURATION = ".st-key-interpret_saturation_chart"
SWEEP = ".st-key-interpret_sweep"

# The forget gate's most often open unit in the saturation scatter: its number and where its
# dot is on the screen (plotly's own axis conversion, after the chart is scrolled into view).
TOP_FORGET_DOT = """() => {
  const gd = document.querySelector('.st-key-interpret_saturation_chart .js-plotly-plot');
  const trace = gd._fullData.find(d => d.mode === 'markers' && d.xaxis === 'x2');
  let best = 0;
  for (let i = 0; i < trace.y.length; i++) if (trace.y[i] > trace.y[best]) best = i;
  const xa = gd._fullLayout.xaxis2, ya = gd._fullLayout.yaxis2;
  const box = gd.getBoundingClientRect();
  return {unit: trace.customdata[best][2], x: box.left + xa._offset + xa.l2p(trace.x[best]),
          y: box.top + ya._offset + ya.l2p(trace.y[best])};
}"""

# Whether the saturation chart holds still: at the same place on the screen for 150 ms (looked
# at every 50 ms), so a scroll into view has ended.
HELD_STILL = """() => {
  const top = document.querySelector('.st-key-interpret_saturation_chart')
      .getBoundingClientRect().top;
  const at = performance.now(), seen = window.__saturationTop;
  if (!seen || seen.top !== top) { window.__saturationTop = {top, since: at}; return false; }
  return at - seen.since >= 150;
}"""

# Markers drawn in a chart (SVG paths of its scatter points) and bars drawn.
DRAWN = """(selector) => {
  const gd = document.querySelector(selector + ' .js-plotly-plot');
  if (!gd) return {points: -1, bars: -1};
  return {points: gd.querySelectorAll('.scatterlayer .points path').length,
          bars: gd.querySelectorAll('.barlayer .point path').length};
}"""


def drawn(page, selector: str) -> dict:
    return page.evaluate(DRAWN, selector)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not page.js_errors, page.js_errors


def test_the_lab_measures_sweeps_and_opens_a_clicked_unit_in_explore(page, app_url, artifacts):
    page.set_viewport_size({"width": 1280, "height": 720})
    # 50 held-out sequences, the fewest the lab offers: the sweep runs them once per unit
    page.goto(f"{app_url}/interpret?n=50")
    wait_for_app(page, timeout_ms=120_000)
    page.wait_for_selector(f"{SATURATION} {CHART}", timeout=120_000)
    body = page.inner_text("body")
    for heading in ("Gate saturation", "Memory", "Unit search", "Interventions"):
        assert heading in body
    assert "shipped trained LSTM" in body and "50 held-out sequences" in body
    wait_until(page, f"() => ({DRAWN})('{SATURATION}').points >= 192",
               "a dot for each of the 64 units of the input, forget and output gates")
    assert page.locator(CHART).count() >= 5  # saturation, map, τ, spread, accuracy by distance
    no_exception(page)
    shot(page, artifacts, "interpret-landing")

    page.get_by_role("button", name="Run the sweep").click()
    page.get_by_text("units ablated one at a time").wait_for(timeout=120_000)
    wait_for_app(page)
    page.locator(SWEEP).scroll_into_view_if_needed()
    wait_until(page, f"() => ({DRAWN})('{SWEEP}').bars === 64", "a bar for each of 64 units")
    no_exception(page)
    shot(page, artifacts, "interpret-sweep")

    page.locator(SATURATION).scroll_into_view_if_needed()
    wait_until(page, HELD_STILL, "the scroll settled before the dot's place is read")
    dot = page.evaluate(TOP_FORGET_DOT)
    page.mouse.move(dot["x"], dot["y"])
    page.locator(".hoverlayer", has_text=f"unit {dot['unit']}").wait_for(timeout=10_000)
    page.mouse.click(dot["x"], dot["y"])
    page.get_by_text("gatescope · Explore").wait_for(timeout=60_000)
    wait_for_app(page, timeout_ms=120_000)
    page.wait_for_selector(CHART, timeout=60_000)
    assert page.locator(".st-key-explore_unit input").input_value() == str(dot["unit"])
    assert "Subject-verb agreement · LSTM · shipped trained LSTM" in page.inner_text("body")
    wait_until(page, f"() => location.search.includes('unit={dot['unit']}')",
               "Explore's link names the unit")
    no_exception(page)
    shot(page, artifacts, "interpret-opened-in-explore")
