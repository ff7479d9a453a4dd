"""Readable everywhere (issue #14): on every page, at 1280x720, at 1920x1080 and at 150% zoom
of 1280x720 (853x480 CSS pixels at device scale 1.5), no text overlaps other text, runs
outside its chart or the window, or is cut by an ellipsis. Measured from the page's layout by
tests/e2e/readability.py, not judged from screenshots (those are kept for a person when a case
fails).

One browser page per device scale serves the whole file: each view is opened once and then
shown at that scale's sizes, the way a visitor resizes a window (the page is not reloaded; the
charts and Streamlit's layout answer the resize as they would).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from readability import unreadable_texts

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class WindowSize:
    width: int
    height: int
    scale: float = 1.0

    def __str__(self) -> str:
        return f"{self.width}x{self.height}" + (f"@{self.scale:g}" if self.scale != 1 else "")


SIZES = [WindowSize(1280, 720), WindowSize(1920, 1080), WindowSize(853, 480, 1.5)]

# name -> the view's path, as a visitor's link opens it (a link does not start playback, so
# every view holds still while it is measured)
VIEWS = {
    "explore-lstm-words": "/?task=agreement&cell=lstm",
    "explore-gru": "/?task=agreement&cell=gru",
    "explore-rnn": "/?task=agreement&cell=rnn",
    "explore-numbers": "/?task=adding&cell=lstm",
    "explore-airline": "/?task=airline&cell=gru",
    "compare-adding": "/compare?task=adding",
    "compare-agreement": "/compare?task=agreement",
    "compare-copy": "/compare?task=copy",
    "gradient-lab": "/gradient_lab",
    "interpret": "/interpret",
    "train": "/train",
    "search": "/search",
    "about": "/about",
    "tours": "/tours",
    "explore-present": "/?task=agreement&cell=lstm&present=1",
    "compare-present": "/compare?task=adding&present=1",
}


#: The GRU's equations at 150% zoom, wider than Explore's right column (any GRU view), and the
#: player's step readout there.
GRU_PANEL_AT_150_ZOOM = [
    'explore_chart: "PyTorch\'s equations, unit 0 at step t" runs outside the window',
    'explore_chart: "r t = σ(W ir x t + b ir + W hr h t−1 + b hr )" runs outside the window',
    'explore_chart: "z t = σ(W iz x t + b iz + W hz h t−1 + b hz )" runs outside the window',
    'explore_chart: "n t = tanh(W in x t + b in + r t ⊙ (W hn h t−1 + b hn ))" runs outside the window',
    'explore_chart: "h t = (1 − z t ) ⊙ n t + z t ⊙ h t−1" runs outside its chart',
    'explore_chart: "PyTorch: z ≈ 1 keeps the old state h t−1" runs outside the window',
    'explore_chart: "step t = 0" overlaps "×10 from t=0"',
]

# (view, size) -> the exact problems a case is known to have and that are not fixed yet (issue
# #14 is open on them). A case passes while every problem its page shows is listed here; any
# other problem fails it. Listed ones are allowed to come and go: some sit on a borderline
# that the run's timing and the window's last pixels decide (a strict expected failure made
# the file fail either way).
KNOWN: dict[tuple[str, str], list[str]] = {
    ('explore-lstm-words', '853x480@1.5'): [
        # the first view opened at 150% zoom was measured once with its chart laid out narrower
        # than the window it settled in (a full run; not again alone)
        'explore_chart: "= 0.61·0.00 + 0.49·(−0.02) = −0.01" runs outside the window',
        'explore_chart: "= 0.41·tanh(−0.01) = 0.00" runs outside its chart',
        'explore_chart: "cell state c (fixed scale −3.00 … 3.00; 25% of values beyon…" runs outside its chart',
        'explore_chart: "0.49" overlaps "−0.02"',
        'explore_chart: "−0.02" overlaps "0.41"',
        'explore_chart: "cell state c (fixed scale −3.00 … 3.00; 25% of values beyon…" overlaps "c"',
        'explore_chart: "cell state c (fixed scale −3.00 … 3.00; 25% of values beyon…" overlaps "f"',
        'explore_chart: "PyTorch\'s equations, unit 0 at step t" runs outside the window',
        'explore_chart: "i t = σ(W ii x t + b ii + W hi h t−1 + b hi )" runs outside the window',
        'explore_chart: "f t = σ(W if x t + b if + W hf h t−1 + b hf )" runs outside the window',
        'explore_chart: "g t = tanh(W ig x t + b ig + W hg h t−1 + b hg )" runs outside the window',
        'explore_chart: "o t = σ(W io x t + b io + W ho h t−1 + b ho )" runs outside the window',
        'explore_chart: "step t = 0" overlaps "×10 from t=0"',
    ],
    ('explore-gru', '1280x720'): [
        'explore_chart: "n t = tanh(W in x t + b in + r t ⊙ (W hn h t−1 + b hn ))" runs outside its chart',
    ],
    ('explore-gru', '853x480@1.5'): [
        'explore_chart: "= (1 − 0.43)·0.21 + 0.43·0.00 = 0.12" runs outside the window',
        *GRU_PANEL_AT_150_ZOOM,
    ],
    ('explore-rnn', '853x480@1.5'): [
        'explore_chart: "PyTorch\'s equations, unit 0 at step t" runs outside the window',
        'explore_chart: "h t = tanh(W ih x t + b ih + W hh h t−1 + b hh )" runs outside the window',
        'explore_chart: "step t = 0" overlaps "×10 from t=0"',
    ],
    ('explore-numbers', '853x480@1.5'): [
        'explore_chart: "= 0.78·0.00 + 0.59·0.32 = 0.19" runs outside the window',
        'explore_chart: "PyTorch\'s equations, unit 0 at step t" runs outside the window',
        'explore_chart: "i t = σ(W ii x t + b ii + W hi h t−1 + b hi )" runs outside the window',
        'explore_chart: "f t = σ(W if x t + b if + W hf h t−1 + b hf )" runs outside the window',
        'explore_chart: "g t = tanh(W ig x t + b ig + W hg h t−1 + b hg )" runs outside the window',
        'explore_chart: "o t = σ(W io x t + b io + W ho h t−1 + b ho )" runs outside the window',
        'explore_chart: "step t = 0" overlaps "×10 from t=0"',
    ],
    ('explore-airline', '1280x720'): [
        'explore_chart: "= (1 − 0.52)·(−0.15) + 0.52·0.00 = −0.07" runs outside its chart',
        'explore_chart: "n t = tanh(W in x t + b in + r t ⊙ (W hn h t−1 + b hn ))" runs outside its chart',
    ],
    ('explore-airline', '853x480@1.5'): [
        'explore_chart: "= (1 − 0.52)·(−0.15) + 0.52·0.00 = −0.07" runs outside the window',
        *GRU_PANEL_AT_150_ZOOM,
    ],
    ('gradient-lab', '853x480@1.5'): [
        '"Rescale W_hh" is cut by an ellipsis',
    ],
}



def cases():
    for view in VIEWS:
        for size in SIZES:
            yield pytest.param(view, size, id=f"{view}@{size}")


# A fingerprint of the laid-out charts: their boxes and where their texts stand; null while a
# chart Streamlit has placed is not drawn yet.
LAYOUT = """() => {
  const placed = document.querySelectorAll('[data-testid="stPlotlyChart"]');
  const drawn = [...document.querySelectorAll('.js-plotly-plot')]
      .filter(gd => gd.querySelector('.main-svg text'));
  if (drawn.length < placed.length) return null;
  return drawn.map(gd => {
    const r = gd.getBoundingClientRect();
    const texts = [...gd.querySelectorAll('text')].map(t => {
        const b = t.getBoundingClientRect(); return `${Math.round(b.x)},${Math.round(b.y)}`; });
    return `${Math.round(r.width)}x${Math.round(r.height)}:${texts.join(';')}`;
  }).join('|') + '|' + document.body.scrollWidth;
}"""
# The page has settled once its fingerprint has held still for STILL_MS. Looked at in the
# browser every 50 ms (a look from Python, then a fixed pause, waited up to a pause too long
# after each change); the time it last changed is kept on the window.
STILL_MS = 250
HELD_STILL = f"""(stillMs) => {{
  const now = ({LAYOUT})(), at = performance.now(), seen = window.__readabilityLayout;
  if (now === null || !seen || seen.layout !== now) {{
    window.__readabilityLayout = {{layout: now, since: at}};
    return false;
  }}
  return at - seen.since >= stillMs;
}}"""
# Streamlit marks its app with the state of the script's run: "initial" until the first run
# begins, then "running" and "notRunning".
SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def settle(page, timeout_ms: int = 15_000) -> None:
    """Wait until the charts have answered the last resize: the same layout for STILL_MS."""
    page.evaluate("() => { window.__readabilityLayout = null; }")
    try:
        page.wait_for_function(HELD_STILL, arg=STILL_MS, timeout=timeout_ms, polling=50)
    except Exception as error:  # Playwright's TimeoutError
        raise AssertionError(f"the page did not settle within {timeout_ms} ms") from error


@pytest.fixture(scope="module")
def windows(browser):
    """One browser page per device scale for the whole file, each with the view it has open:
    a view is opened once per scale, at that scale's first size, and then shown at that
    scale's sizes. (A zoom set on an open page is not the same: Streamlit folds its sidebar
    away only on a page that opens narrow.)"""
    contexts, pages = [], {}

    def window(scale: float):
        if scale not in pages:
            first = next(size for size in SIZES if size.scale == scale)
            contexts.append(browser.new_context(
                viewport={"width": first.width, "height": first.height},
                device_scale_factor=scale, reduced_motion="reduce"))
            pages[scale] = contexts[-1].new_page()
            pages[scale].opened = None
        return pages[scale]

    yield window
    for context in contexts:
        context.close()


def open_view(page, app_url: str, view: str, scale: float) -> None:
    """Start opening `view` on the page of `scale`, at that scale's first size; show() waits
    for it."""
    first = next(size for size in SIZES if size.scale == scale)
    page.set_viewport_size({"width": first.width, "height": first.height})
    page.goto(app_url + VIEWS[view], wait_until="commit")
    page.opened = view


def open_next_view(page, app_url: str, view: str, size: WindowSize) -> None:
    """Once `page` has shown `view` at its scale's last size, start opening the next view on
    it: the server runs that page's script while the other scale's page is measured (cases
    run view by view, each view at every size)."""
    if any(later.scale == size.scale for later in SIZES[SIZES.index(size) + 1:]):
        return
    names = list(VIEWS)
    if names.index(view) + 1 < len(names):
        open_view(page, app_url, names[names.index(view) + 1], size.scale)


def show(page, app_url: str, view: str, size: WindowSize) -> None:
    if page.opened != view:
        open_view(page, app_url, view, size.scale)
    page.set_viewport_size({"width": size.width, "height": size.height})
    # the script has run (a resize runs none): every chart it makes is placed
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    settle(page)


@pytest.mark.parametrize("view, size", cases())
def test_every_text_reads_whole(windows, app_url, artifacts, view, size):
    window = windows(size.scale)
    show(window, app_url, view, size)
    problems = unreadable_texts(window)
    if problems:
        window.screenshot(path=str(artifacts / f"readability-{view}@{size}.png"), full_page=True)
    open_next_view(window, app_url, view, size)
    unexpected = [p for p in problems if p not in KNOWN.get((view, str(size)), [])]
    if unexpected:
        pytest.fail(f"{view} at {size}, {len(unexpected)} unreadable:\n" + "\n".join(unexpected),
                    pytrace=False)
