"""A change and a tour step of this checkout against another commit's, interleaved in one
browser, so that both codes meet the same moments of a noisy machine.

    python benchmarks/ui_pair.py REF [--changes 30] [--passes 4]

REF is any commit (e54e3d8, HEAD~3, a branch). It is checked out into a temporary git worktree;
both apps are started, and one Chromium opens a page on each. Then, alternating between the
two pages (which goes first alternates too):
- change -> chart, T=200, H=64: as benchmarks/ui_speed.py times it in the page (the sample
  seed's "+", to the chart's new image), and when the figure's message arrived;
- a tour step -> its chart: "Next →" through the vanishing-gradient tour at 1920x1080; the
  first pass through is left out (each server traces and draws every step once).
Prints each code's medians and quartiles, and this code's over REF's. Whole runs of
ui_speed.py, one after the other, drift with the machine by more than a small change moves
them (README, "How fast the page feels").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e"), str(ROOT / "benchmarks")]

from harness import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, free_port, start_app, stop_app  # noqa: E402
from ui_speed import (  # noqa: E402
    CHANGE_IN_PAGE, FIRST_IMAGE, TOUR_STEP_IN_PAGE, open_change_view, same_views,
)


def summary(values: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(values, n=4)
    return f"{median:.0f} ms (quartiles {q1:.0f}–{q3:.0f}, n={len(values)})"


def new_page(browser):
    return browser.new_page(viewport={"width": 1500, "height": 1000})


def tour_pass(page, url: str) -> list[float]:
    page.goto(f"{url}/?tour=vanishing_gradient&step=1")
    page.wait_for_selector(FIRST_IMAGE, state="attached", timeout=120_000)
    page.wait_for_timeout(1000)
    return [page.evaluate(TOUR_STEP_IN_PAGE, same) for same in same_views("vanishing_gradient")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ref", help="the commit to measure against")
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--passes", type=int, default=4, help="timed passes through the tour")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ref_root = Path(tmp) / "ref"
        subprocess.run(["git", "worktree", "add", "--detach", str(ref_root), args.ref],
                       cwd=ROOT, check=True, capture_output=True)
        codes = {"this": ROOT, args.ref: ref_root}
        procs, urls = [], {}
        try:
            for name, root in codes.items():
                port = free_port()
                log = ARTIFACTS / f"ui_pair-{'this' if root == ROOT else 'ref'}.log"
                procs.append(start_app(port, log, root=root))
                urls[name] = f"http://127.0.0.1:{port}"
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                chart, figure, tour = ({name: [] for name in codes} for _ in range(3))
                pages = {name: open_change_view(new_page(browser), url)
                         for name, url in urls.items()}
                for i in range(args.changes):
                    for name in list(codes)[:: 1 if i % 2 == 0 else -1]:
                        pages[name].bring_to_front()
                        timed = pages[name].evaluate(CHANGE_IN_PAGE)
                        chart[name].append(timed["chart"])
                        figure[name].append(timed["figure"])
                for page in pages.values():
                    page.set_viewport_size({"width": 1920, "height": 1080})
                for k in range(args.passes + 1):
                    for name in list(codes)[:: 1 if k % 2 == 0 else -1]:
                        pages[name].bring_to_front()
                        stepped = tour_pass(pages[name], urls[name])
                        if k:  # the first pass through traces and draws each step anew
                            tour[name] += stepped
                browser.close()
        finally:
            for proc in procs:
                stop_app(proc)
            subprocess.run(["git", "worktree", "remove", "--force", str(ref_root)], cwd=ROOT,
                           capture_output=True)
    for label, times in (("change -> chart, T=200 H=64", chart),
                         ("  its figure's message arrives", figure),
                         ("tour step -> its chart, rehearsed", tour)):
        ours, theirs = (statistics.median(times[name]) for name in codes)
        print(f"{label}: this {summary(times['this'])}; {args.ref} "
              f"{summary(times[args.ref])}; ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
