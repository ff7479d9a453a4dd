"""How fast the Explore page feels, measured in headless Chromium against the running app.

    python benchmarks/ui_speed.py

Prints, each next to its target (issue 4):
- cold start: from launching `streamlit run app.py` to the first chart drawn in the browser;
- change -> chart: a changed choice (the sample seed) to the redrawn chart, T=200, H=64, median;
- playback: frames per second while playing at T=1000 (Plotly's `plotly_animatingframe`
  events, and distinct cursor positions sampled every animation frame);
- payload: bytes the browser received over the websocket for the T=1000 view, against the raw
  float32 bytes of the data the figure shows.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from harness import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, free_port, start_app, stop_app  # noqa: E402

CHART = ".js-plotly-plot"
FIRST_IMAGE = f"{CHART} image"


def raw_bytes(query: dict) -> int:
    """float32 bytes of everything the figure shows for this view (maps, lines, saliency)."""
    from core import explore as ex

    view = ex.View.from_query(query)
    choice = ex.resolve_model(view)
    result = ex.run(view, choice, ex.make_example(view))
    tr = result.trace
    arrays = [tr.hidden[0, 0], tr.grad_hidden[0, 0], tr.grad_input]
    arrays += [g[0, 0] for g in tr.gates.values()]
    if tr.cell is not None:
        arrays += [tr.cell[0, 0], tr.grad_cell[0, 0]]
    if result.values is not None:
        arrays.append(result.values)
    arrays.append(tr.hidden[0, 0, :, :3])  # the picked units' lines
    return sum(a.size * 4 for a in arrays)


def source_for(task: str, cell: str) -> str:
    from core import zoo

    return "trained" if (task, cell) in set(zoo.available()) else "random"


def main() -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    results = []
    load_before = os.getloadavg()[0]
    launched = time.perf_counter()
    proc = start_app(port, ARTIFACTS / "ui_speed-streamlit.log")
    healthy = time.perf_counter() - launched
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            # --- cold start -------------------------------------------------------------------
            page.goto(url)
            page.wait_for_selector(FIRST_IMAGE, state="attached", timeout=120_000)
            cold = time.perf_counter() - launched
            results.append(("cold start to first chart", f"{cold:.2f} s (server up {healthy:.2f} s)",
                            "<= 5 s", cold <= 5))

            # --- change -> chart, T=200, H=64 ---------------------------------------------------
            src = source_for("adding", "lstm")
            page.goto(f"{url}/?task=adding&cell=lstm&len=200&source={src}")
            page.wait_for_selector(FIRST_IMAGE, state="attached", timeout=60_000)
            page.wait_for_timeout(1000)
            plus = page.locator('[data-testid="stNumberInput"]').filter(
                has_text="Sample seed").locator('[data-testid="stNumberInputStepUp"]')
            times, server = [], []
            messages: list[tuple[float, int]] = []
            page.on("websocket", lambda ws: ws.on("framereceived", lambda p: messages.append(
                (time.perf_counter(), len(p)))))
            page.reload()
            page.wait_for_selector(FIRST_IMAGE, state="attached", timeout=60_000)
            page.wait_for_timeout(1000)
            for _ in range(9):
                messages.clear()
                before = page.eval_on_selector(FIRST_IMAGE, "e => e.getAttribute('href')")
                t0 = time.perf_counter()
                plus.click()
                page.wait_for_function(
                    """prev => { const e = document.querySelector('.js-plotly-plot image');
                                 return e && e.getAttribute('href') !== prev; }""",
                    arg=before, timeout=30_000, polling="raf")
                times.append(time.perf_counter() - t0)
                big = [t for t, n in messages if n > 50_000]  # the figure's message
                server.append(big[0] - t0 if big else float("nan"))
                page.wait_for_timeout(300)
            change = statistics.median(times[1:])  # the first one warms the cache of the page
            srv = statistics.median(server[1:])
            results.append((f"change -> chart, T=200 H=64 ({src}), median of {len(times) - 1}",
                            f"{change * 1000:.0f} ms (figure arrives {srv * 1000:.0f} ms)",
                            "<= 300 ms", change <= 0.3))

            # --- payload and playback at T=1000 ------------------------------------------------
            page2 = browser.new_page(viewport={"width": 1500, "height": 1000})
            received = [0]

            def on_ws(ws):
                ws.on("framereceived", lambda payload: received.__setitem__(
                    0, received[0] + len(payload)))

            page2.on("websocket", on_ws)
            query = {"task": "adding", "cell": "lstm", "len": "1000", "source": src}
            page2.goto(f"{url}/?" + "&".join(f"{k}={v}" for k, v in query.items()))
            page2.wait_for_selector(FIRST_IMAGE, state="attached", timeout=120_000)
            page2.wait_for_timeout(2000)
            sent = received[0]
            raw = raw_bytes(query)
            ratio = sent / raw
            results.append(("payload at T=1000 (websocket bytes / raw float32 shown)",
                            f"{sent / 1e6:.2f} MB / {raw / 1e6:.2f} MB = {ratio:.2f}x", "<= 3x",
                            ratio <= 3))
            fps = page2.evaluate(
                """async () => {
                  const gd = document.querySelector('.js-plotly-plot');
                  // Pause whatever is playing, then press Play and count for 5 s.
                  const buttons = gd.querySelectorAll('.updatemenu-button');
                  buttons[1].dispatchEvent(new MouseEvent('click', {bubbles: true}));
                  await new Promise(r => setTimeout(r, 300));
                  let events = 0; gd.on('plotly_animatingframe', () => events++);
                  const cursor = () => gd._fullData.filter(t => t.yaxis === 'y99')[0].x[0];
                  buttons[0].dispatchEvent(new MouseEvent('click', {bubbles: true}));
                  let moves = 0, last = cursor();
                  const t0 = performance.now();
                  await new Promise(done => {
                    function tick() {
                      const c = cursor(); if (c !== last) { moves++; last = c; }
                      if (performance.now() - t0 < 5000) requestAnimationFrame(tick); else done();
                    }
                    requestAnimationFrame(tick);
                  });
                  const s = (performance.now() - t0) / 1000;
                  return {events: events / s, moves: moves / s};
                }""")
            results.append(("playback at T=1000 (plotly_animatingframe events / s)",
                            f"{fps['events']:.1f} fps (cursor moved {fps['moves']:.1f}/s)",
                            ">= 30 fps", fps["events"] >= 30))
            page2.screenshot(path=str(ARTIFACTS / "ui_speed-T1000.png"))
            browser.close()
    finally:
        stop_app(proc)

    load_after = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} before, "
          f"{load_after:.1f} after (timings are only meaningful on an otherwise idle machine)")
    width = max(len(r[0]) for r in results)
    print(f"{'measure':<{width}}  {'value':<34} target     ok")
    for name, value, target, ok in results:
        print(f"{name:<{width}}  {value:<34} {target:<10} {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
