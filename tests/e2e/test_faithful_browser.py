"""What a visitor meets in Chromium on the paths that used to break: a link straight to a page on
a freshly started server, a widget pressed while the landing chart plays, the lab's presets,
choosing to type or upload, and a trained model opened in Explore."""

from __future__ import annotations

import pytest

from core.views.lab import PRESETS
from harness import free_port, shot, start_app, stop_app, wait_for_app, wait_until

pytestmark = pytest.mark.e2e

CHART = ".js-plotly-plot"
CURSOR_X = """() => { const gd = document.querySelector('.js-plotly-plot');
                      return gd._fullData.filter(t => t.yaxis === 'y99')[0].x[0]; }"""
PAGE_TITLES = ["Explore", "Compare cells", "Gradient lab", "Train", "About"]


def navigation(page) -> list[str]:
    return [line.strip() for line in page.inner_text('[data-testid="stSidebarNav"]').splitlines()
            if line.strip()]


# Each page's link, what shows that page ran (not another), and where the link's choice shows
# that it was read: (query, role, name, element, what it shows).
FRESH_LINKS = {
    "train": ("cells=lstm&steps=30", "button", "Train", '.st-key-train_cells [aria-checked="true"]',
              "LSTM"),
    "compare": ("task=agreement", "heading", "gatescope · Compare", ".st-key-compare_task input",
                "Subject-verb agreement"),
    "gradient_lab": ("cell=gru", "heading", "Gradient lab",
                     '.st-key-lab_cell [aria-checked="true"]', "GRU"),
}


def test_links_to_pages_on_a_fresh_server_open_those_pages_in_the_app(browser, artifacts):
    """A teacher's prepared link may be the first request a (re)started server sees: it must
    open that page within the app (app.py's router ran: its titles in the navigation), not the
    page file alone (the files' names there). The bug was the server's (a pages/ folder beside
    app.py made Streamlit run a linked page's file alone until app.py's own st.navigation ran,
    which a link to another page never does), so one fresh server takes all three links: each
    in a fresh browser context, all asked for before any is looked at, none of them app.py's
    own page."""
    port = free_port()
    server = start_app(port, artifacts / "streamlit-fresh.log")
    contexts = [browser.new_context(viewport={"width": 1280, "height": 720}) for _ in FRESH_LINKS]
    try:
        pages = {path: context.new_page() for path, context in zip(FRESH_LINKS, contexts)}
        for path, page in pages.items():
            query = FRESH_LINKS[path][0]
            page.goto(f"http://127.0.0.1:{port}/{path}?{query}")
        for path, page in pages.items():
            query, role, name, element, value = FRESH_LINKS[path]
            wait_for_app(page)
            page.get_by_role(role, name=name, exact=True).first.wait_for(timeout=60_000)
            shown = navigation(page)  # the titles, each after its icon's name
            assert [line for line in shown if line in PAGE_TITLES] == PAGE_TITLES, (path, shown)
            # Not the files' names (the old layout's); "compare" is also the Compare icon's name.
            assert not {"app", "explore", "gradient lab", "train", "about"} & set(shown), \
                (path, shown)
            chosen = page.locator(element)  # the link's choice was read
            shows = chosen.input_value() if element.endswith("input") else chosen.inner_text()
            assert value in shows.splitlines(), (path, shows)
    finally:
        for context in contexts:
            context.close()
        stop_app(server)


def test_pressing_a_widget_while_the_landing_chart_plays_raises_no_page_error(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    page.wait_for_selector(CHART, timeout=60_000)
    wait_until(page, f"x0 => ({CURSOR_X})() !== x0", "the landing chart plays",
               arg=page.evaluate(CURSOR_X))
    page.get_by_text("GRU", exact=True).first.click()
    wait_for_app(page)
    page.wait_for_selector(CHART, timeout=60_000)
    page.wait_for_timeout(500)
    assert page.js_errors == []


def test_the_lab_presets_set_their_widgets_without_a_warning(page, app_url, artifacts):
    page.goto(f"{app_url}/gradient_lab")
    wait_for_app(page)
    for preset in PRESETS:
        page.get_by_role("button", name=preset).click()
        wait_for_app(page)
    log = (artifacts / "streamlit-e2e.log").read_text()
    assert "created with a default value but also had its value set" not in log
    assert "Traceback" not in log


def test_choosing_to_type_or_upload_asks_for_it_without_an_error(page, app_url):
    """Each choice in turn on one view: first to type, then to upload."""
    page.goto(f"{app_url}/?task=adding&source=random")
    wait_for_app(page)
    page.wait_for_selector(CHART, timeout=60_000)
    asked = None  # what the info box asked for, once a choice asked
    for choice in ("my own text / numbers", "my own weights (upload)"):
        page.get_by_text(choice, exact=True).click()
        # the page asks for the input (an info, not an error) once the click's rerun is drawn:
        # on a busy machine that can be after the app first looks idle
        wait_until(page, """asked => {
            const info = document.querySelector('[data-testid="stAlertContentInfo"]');
            return !!info && info.innerText !== asked; }""",
                   f"choosing {choice!r} asks for it", arg=asked, timeout_ms=60_000)
        wait_for_app(page)
        alerts = page.locator('[data-testid="stAlertContentError"]')
        assert alerts.count() == 0, alerts.first.inner_text()
        assert page.locator(CHART).count() == 1  # the last view stays
        asked = page.locator('[data-testid="stAlertContentInfo"]').first.inner_text()


def test_a_model_opened_from_the_train_page_shows_explore_from_its_top(page, app_url, artifacts):
    page.goto(f"{app_url}/train?task=adding&cells=gru&steps=20&hidden=8")
    wait_for_app(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Trained in this session").wait_for(timeout=120_000)
    wait_for_app(page)
    page.get_by_role("button", name="Open in Explore").scroll_into_view_if_needed()
    page.get_by_role("button", name="Open in Explore").click()
    page.get_by_text("gatescope · Explore").wait_for(timeout=60_000)
    wait_for_app(page)
    page.wait_for_selector(CHART, timeout=60_000)
    top = page.evaluate("""() => { const main = document.querySelector('[data-testid="stMain"]')
                                   || document.scrollingElement; return main.scrollTop; }""")
    shot(page, artifacts, "explore-opened-from-train")
    assert top == 0
    assert page.get_by_text("gatescope · Explore").is_visible()


def test_a_prepared_link_opens_at_its_step_and_stays_there(page, app_url):
    """A teacher's link with t=20 shows step 20 and waits for the teacher; only the bare
    landing page plays by itself."""
    page.goto(f"{app_url}/?task=adding&cell=lstm&t=20")
    wait_for_app(page)
    page.wait_for_selector(CHART, timeout=60_000)
    assert page.evaluate(CURSOR_X) == 20
    page.wait_for_timeout(2500)  # autoplay presses Slow within a second or two of the chart
    assert page.evaluate(CURSOR_X) == 20
    assert page.js_errors == []
