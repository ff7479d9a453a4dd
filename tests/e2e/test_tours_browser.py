"""Guided tours in real Chromium: a link opens a tour at its step, Next and Previous land on
the neighbouring steps' pages with their state, the Tours page starts a tour and opens a
teacher's own file, and hide flags hide what they name. Screenshots at 1280x720 and 1920x1080
for a person to look at."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from harness import wait_for_app, wait_until

from core.tours import shipped_tours
from core.views.compare import DISTANCE_WORDS
from ui.tours import past_switch_script

pytestmark = pytest.mark.e2e

BAR = ".st-key-tour_bar"
#: The presented Compare step 6 of the vanishing-gradient tour (show=accuracy), over its chart
SIXTH_STEPS_LINE = f"{DISTANCE_WORDS['agreement'][0]} · RNN, LSTM and GRU"


def real_errors(page) -> list[str]:
    """Uncaught errors, less plotly.js's rejected promise when an animation is interrupted (it
    rejects with `undefined`: nothing went wrong)."""
    return [e for e in page.js_errors if e != "undefined"]


def where(page) -> tuple[str, dict[str, str]]:
    """The page's URL path and its query parameters."""
    url = urlsplit(page.url)
    return url.path, dict(parse_qsl(url.query))


def wait_for_step(page, tour: str, number: int) -> None:
    """Wait until the URL is at step `number` of `tour`, its page has run and its bar is drawn."""
    wait_until(page, f"""() => new URLSearchParams(location.search).get('step') === '{number}'
                               && new URLSearchParams(location.search).get('tour') === '{tour}'""",
               f"the URL is at step {number}", timeout_ms=60_000)
    wait_for_app(page)
    page.locator(BAR).get_by_text(f"step {number} of").wait_for(timeout=60_000)
    page.locator(".st-key-tour_prev button").wait_for(timeout=60_000)


def bar_text(page) -> str:
    return page.locator(BAR).inner_text()


def test_a_tour_link_opens_at_its_step_and_next_and_previous_move_between_pages(
        page, app_url, artifacts):
    tour = shipped_tours()["vanishing_gradient"]
    fifth, sixth = tour.steps[4], tour.steps[5]
    assert (fifth.page, sixth.page) == ("explore", "compare")
    page.goto(f"{app_url}/?task=agreement&cell=rnn&tour=vanishing_gradient&step=5")
    wait_for_step(page, "vanishing_gradient", 5)
    assert f"step 5 of {len(tour.steps)}" in bar_text(page)
    assert fifth.title in bar_text(page)
    assert page.locator(".st-key-tour_narration").get_by_text("Agreement: the verb").count() == 1
    assert page.locator(BAR).get_by_text("Speaker notes").count() == 1  # closed
    for width, height in ((1280, 720), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / f"tours-step-{width}x{height}.png"))

    page.locator(".st-key-tour_next button").click()
    wait_for_step(page, "vanishing_gradient", 6)
    path, query = where(page)
    assert (path, query) == ("/compare", tour.link(6))
    assert sixth.title in bar_text(page)
    # the Compare page shows the step's task and the chart the step is about, accuracy by
    # distance, in its figure's place (presented: its one line over the chart)
    page.get_by_text(SIXTH_STEPS_LINE).wait_for(timeout=30_000)
    page.locator(".st-key-accuracy_chart .js-plotly-plot").wait_for(timeout=30_000)
    assert "Subject-verb agreement" in page.inner_text("body")
    page.screenshot(path=str(artifacts / "tours-next-1920x1080.png"))

    page.locator(".st-key-tour_prev button").click()
    wait_for_step(page, "vanishing_gradient", 5)
    assert where(page) == ("/", tour.link(5))
    assert real_errors(page) == []


def test_the_browsers_back_and_forward_take_one_step_a_press_across_pages(page, app_url):
    """Streamlit's switch to a step on another page leaves an extra history entry (the page
    left, with the new step's number); Back and Forward go past it: one press, one step, each
    showing its own view."""
    tour = shipped_tours()["vanishing_gradient"]
    page.goto(f"{app_url}/?task=agreement&cell=rnn&tour=vanishing_gradient&step=5")
    wait_for_step(page, "vanishing_gradient", 5)
    page.locator(".st-key-tour_next button").click()
    wait_for_step(page, "vanishing_gradient", 6)
    page.get_by_text(SIXTH_STEPS_LINE).wait_for(timeout=30_000)
    entries = page.evaluate("history.length")

    page.go_back()
    wait_for_step(page, "vanishing_gradient", 5)
    assert where(page)[0] == "/"
    page.get_by_text("RNN (vanilla) · shipped trained RNN").wait_for(timeout=30_000)
    assert page.get_by_text(SIXTH_STEPS_LINE).count() == 0
    page.go_forward()
    wait_for_step(page, "vanishing_gradient", 6)
    assert where(page) == ("/compare", tour.link(6))
    page.get_by_text(SIXTH_STEPS_LINE).wait_for(timeout=30_000)
    assert page.evaluate("history.length") == entries  # nothing pushed on the way
    assert real_errors(page) == []


def test_the_script_past_the_switchs_entry_moves_once_and_only_from_that_entry(page):
    """Streamlit may mount the script again after it has moved the browser (a busy CI machine
    did): it must neither take a second step nor move from any other entry. Run here on a
    blank page at the entries' addresses, with no server."""
    page.route("http://gatescope.test/**", lambda route: route.fulfill(
        body="<html><body></body></html>", content_type="text/html"))
    page.goto("http://gatescope.test/?tour=t&step=1")
    page.evaluate("""() => { history.pushState({}, "", "/?tour=t&step=2");
                             history.pushState({}, "", "/compare?tour=t&step=2"); }""")
    back = past_switch_script("back", "/", "t", 2)

    def moved(script: str) -> bool:
        """Run `script` (twice at once, as a remount can) and say whether the page moved."""
        return page.evaluate("""script => new Promise(done => {
            addEventListener("popstate", () => done(true), {once: true});
            setTimeout(() => done(false), 1000);
            eval(script); eval(script); })""", script)

    assert not moved(back)  # the step's own page: not the entry left behind
    page.go_back()
    assert where(page) == ("/", {"tour": "t", "step": "2"})
    assert moved(back)
    assert where(page) == ("/", {"tour": "t", "step": "1"})  # one entry, not two
    assert not moved(back)  # mounted again where it led
    page.go_forward()  # onto the entry left behind again, from the step before
    assert not moved(past_switch_script("forward", "/", "another", 2))
    assert moved(past_switch_script("forward", "/", "t", 2))
    assert where(page) == ("/compare", {"tour": "t", "step": "2"})


def test_the_tours_page_starts_a_tour_and_presents_a_teachers_file(page, app_url, artifacts,
                                                                    tmp_path):
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{app_url}/tours")
    wait_for_app(page)
    page.get_by_text("Inside the LSTM's gates").first.wait_for(timeout=30_000)
    page.locator('[data-testid="stPageLink"]', has_text="Start").nth(2).wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "tours-page-1280x720.png"))

    own = tmp_path / "class 3.yaml"
    own.write_text("title: Our class\nsteps:\n"
                   "  - page: gradient_lab\n    state: {cell: gru}\n    title: Our first look\n"
                   "    narration: The **GRU** at its default biases.\n"
                   "  - page: about\n    title: The names\n    narration: Read the gates.\n")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(own))
    page.get_by_text("is ready, 2 steps").wait_for(timeout=30_000)
    page.locator('[data-testid="stPageLink"]', has_text="Start (2 steps)").last.click()
    wait_for_step(page, "my-class-3", 1)
    assert where(page) == ("/gradient_lab", {"cell": "gru", "tour": "my-class-3", "step": "1"})
    assert "Our first look" in bar_text(page) and "Our class · step 1 of 2" in bar_text(page)
    page.locator(".st-key-tour_next button").click()
    wait_for_step(page, "my-class-3", 2)
    assert where(page)[0] == "/about"
    assert real_errors(page) == []


def test_hide_flags_hide_the_sidebar_and_stay_through_a_tour(page, app_url, artifacts):
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{app_url}/?tour=lstm_gates&step=6&hide=sidebar,toolbar,notes")
    wait_for_step(page, "lstm_gates", 6)
    assert where(page)[0] == "/gradient_lab"
    assert page.locator('[data-testid="stSidebar"]').is_hidden()
    assert page.locator('[data-testid="stToolbar"]').is_hidden()
    assert page.locator(BAR).get_by_text("Speaker notes").count() == 0
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "tours-hidden-1280x720.png"))
    page.locator(".st-key-tour_prev button").click()
    wait_for_step(page, "lstm_gates", 5)
    assert where(page)[1]["hide"] == "sidebar,toolbar,notes"
    assert page.locator('[data-testid="stSidebar"]').is_hidden()
    assert real_errors(page) == []


def tightest_steps() -> list[tuple[str, int]]:
    """Of the shipped tours' presented steps (Explore and Compare draw a stage figure), the one
    with the longest narration on each of the two pages (the bar is tallest there, the figure
    smallest) and every step that points the figure at a unit (its diagram's numbers are
    larger than a landing view's)."""
    chosen: dict[str, tuple[int, str, int]] = {}
    pointed = []
    for name, tour in shipped_tours().items():
        for number, step in enumerate(tour.steps, start=1):
            if step.page not in ("explore", "compare"):
                continue
            length = len(step.narration)
            if length > chosen.get(step.page, (-1,))[0]:
                chosen[step.page] = (length, name, number)
            if "unit" in step.state:
                pointed.append((name, number))
    return sorted({(name, number) for _, name, number in chosen.values()} | set(pointed))


def test_a_presented_tour_step_reads_from_the_back_of_the_room(page, app_url, artifacts):
    """Under the tour's bar the stage figure has less of a 1920 x 1080 screen than a plain
    presentation: its text is drawn larger for it and still reads at 18 px or more, whole."""
    from readability import unreadable_texts
    from test_presentation_browser import MEASURE

    page.set_viewport_size({"width": 1920, "height": 1080})
    for name, number in tightest_steps():
        page.goto(f"{app_url}/?tour={name}&step={number}")
        wait_for_step(page, name, number)
        page.locator("[data-stage-scale]").wait_for(state="attached", timeout=60_000)
        page.wait_for_timeout(500)  # fitted to the window
        measured = page.evaluate(MEASURE)
        assert measured["minText"] >= 18, (name, number, measured)
        assert measured["scrolls"] <= 2, (name, number, measured)
        assert unreadable_texts(page) == [], (name, number)
        page.screenshot(path=str(artifacts / f"tour-{name}-{number}-1920x1080.png"))
