"""Where a change's chart time goes in the browser, and what a chart kept on the page would save.

    python benchmarks/chart_redraw.py

Streamlit gives a `st.plotly_chart` element an id that hashes its figure, and keys the chart's
React component by that id: every new figure unmounts the chart (`Plotly.purge`) and draws the
new one into a fresh element, from nothing. A diff-minded `Plotly.react` never gets to compare
two figures. This script shows both, in one page of the running app (Explore, T=200, H=64):

- in the app: per change of the sample seed, how often plotly.js purged the chart, and how long
  its draws took (the new element's, then Streamlit's second draw);
- off screen, in the same page, with two samples' figures as the page received them (A and B,
  drawn alternately, median of 15):
  - fresh: purge, then draw the next figure, as every change does now (the reference);
  - in place: `Plotly.react` onto the figure drawn before, as a chart kept mounted would;
  - in place, layout arrays only: the same, where the figures differ only in their maps, marks
    and titles (the layout's images, shapes and annotations) and frames: A, with B's. plotly.js
    then redraws those items one by one; a change of a trace or of the layout's `meta` (ours:
    the diagram's numbers at the start step, the maps' values for the pointer's readout) has
    it redraw the whole figure.
Each printed against the fresh draw (ratio).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e"), str(ROOT / "benchmarks")]

from harness import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, free_port, start_app, stop_app  # noqa: E402
from ui_speed import CHANGE_IN_PAGE, open_change_view  # noqa: E402

CHART = ".st-key-explore_chart .js-plotly-plot"

# Count plotly.js's purges and time its draws (their promises) from here on.
RECORD_DRAWS = """() => {
  const P = window.Plotly;
  window.__draws = [];
  for (const name of ['react', 'purge']) {
    const call = P[name];
    P[name] = function (...args) {
      const t0 = performance.now(), done = call.apply(this, args);
      const note = () => window.__draws.push([name, performance.now() - t0]);
      if (done && done.then) { done.then(note, note); } else { note(); }
      return done;
    };
  }
}"""

FIGURE = f"""() => {{
  const gd = document.querySelector('{CHART}');
  return JSON.stringify({{data: gd.data, layout: gd.layout, frames: gd._transitionData._frames}});
}}"""

# Draw A and B alternately into an off-screen element as wide as the chart; median ms.
OFF_SCREEN = f"""async ([A, B, how]) => {{
  const chart = document.querySelector('{CHART}');
  const div = document.createElement('div');
  div.style.cssText = `position:absolute; left:-10000px; top:0; width:${{chart.offsetWidth}}px`;
  document.body.appendChild(div);
  const figures = [JSON.parse(A), JSON.parse(B)];
  await Plotly.react(div, structuredClone(figures[1]));
  const times = [];
  for (let i = 0; i < 16; i++) {{
    let next = structuredClone(figures[i % 2]);
    if (how === 'layout arrays only') {{  // A, with this figure's maps, marks, titles, frames
      const moved = next;
      next = structuredClone(figures[0]);
      for (const part of ['images', 'shapes', 'annotations']) {{
        next.layout[part] = moved.layout[part];
      }}
      next.frames = moved.frames;
    }}
    const t0 = performance.now();
    if (how === 'fresh') {{ Plotly.purge(div); }}
    await Plotly.react(div, next);
    if (i > 0) {{ times.push(performance.now() - t0); }}
    await new Promise(done => setTimeout(done, 30));
  }}
  Plotly.purge(div);
  div.remove();
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}}"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    proc = start_app(port, ARTIFACTS / "chart_redraw-streamlit.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = open_change_view(browser.new_page(viewport={"width": 1500, "height": 1000}),
                                    f"http://127.0.0.1:{port}")
            page.wait_for_timeout(6000)  # past the server's slides warm-up (ui/downloads.py)
            page.evaluate(RECORD_DRAWS)
            changes, purges, first, second = 10, [], [], []
            for _ in range(changes):
                page.evaluate("window.__draws.length = 0")
                page.evaluate(CHANGE_IN_PAGE)
                draws = page.evaluate("window.__draws")
                purges.append(sum(name == "purge" for name, _ in draws))
                reacts = [ms for name, ms in draws if name == "react"]
                first.extend(reacts[:1])
                second.extend(reacts[1:2])
            again = (f", then Streamlit's second draw {statistics.median(second):.0f} ms"
                     if second else ", and no second draw")
            print(f"in the app, per change: {statistics.mean(purges):.1f} purges of the chart; "
                  f"its draw {statistics.median(first):.0f} ms{again} (medians of {changes})")

            a = page.evaluate(FIGURE)
            page.evaluate(CHANGE_IN_PAGE)
            b = page.evaluate(FIGURE)
            fresh = page.evaluate(OFF_SCREEN, [a, b, "fresh"])
            print("off screen, two samples' figures drawn alternately (median of 15):")
            print(f"  fresh (purge, then draw; the reference)  {fresh:6.1f} ms")
            for how in ("in place", "layout arrays only"):
                ms = page.evaluate(OFF_SCREEN, [a, b, how])
                print(f"  {how:<40s} {ms:6.1f} ms  ratio {ms / fresh:.2f}")
            browser.close()
    finally:
        stop_app(proc)


if __name__ == "__main__":
    main()
