"""The animated charts' player in real Chromium (ui/player.js): keys and a clicker's Page keys,
Space, the speed and "play to step", the sidebar's step buttons, "Copy link to this frame" and
the links it makes, the cursor kept over a rerun, and Streamlit's fullscreen."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from harness import shot, wait_for_app, wait_until

pytestmark = pytest.mark.e2e

EXPLORE = "explore_chart"
COMPARE = "compare_chart"


def chart_js(key: str) -> str:
    return f"document.querySelector('.st-key-{key} .js-plotly-plot')"


def cursor_js(key: str = EXPLORE) -> str:
    """The time cursor's step (the cursor is the trace on axis y99)."""
    return f"(() => {chart_js(key)}._fullData.find(t => t.yaxis === 'y99').x[0])()"


def playing_js(key: str = EXPLORE) -> str:
    """Whether plotly.js's animation loop runs on the chart (also while our playback plays)."""
    return (f"(() => {{ const gd = {chart_js(key)}; "
            "return !!(gd && gd._transitionData && gd._transitionData._animationRaf); })()")


def cursor(page, key: str = EXPLORE) -> int:
    return page.evaluate(cursor_js(key))


def playing(page, key: str = EXPLORE) -> bool:
    return page.evaluate(playing_js(key))


def at_step(page, t: int, what: str, key: str = EXPLORE, timeout_ms: int = 10_000) -> None:
    wait_until(page, f"() => {cursor_js(key)} === {t}", what, timeout_ms=timeout_ms)


def open_view(page, url: str, key: str = EXPLORE) -> None:
    """Open `url` and wait until its chart is drawn and the player knows it."""
    page.goto(url)
    wait_for_app(page)
    page.wait_for_selector(f".st-key-{key} .js-plotly-plot .updatemenu-button", timeout=60_000)
    wait_until(page, f"""() => {{ const P = document.__gatescopePlayer;
                                  return !!(P && P.memory['{key}'] && P.speed); }}""",
               "the player takes the chart in")


def real_errors(page) -> list[str]:
    """Uncaught errors, less plotly.js's rejected promise when an animation is interrupted (it
    rejects with `undefined`: nothing went wrong)."""
    return [e for e in page.js_errors if e != "undefined"]


def start_step(page) -> str:
    return page.locator('[data-testid="stNumberInput"]').filter(has_text="Start at step t") \
        .locator("input").input_value()


def set_speed(page, speed: float) -> None:
    """Move the speed slider to `speed` steps per second, as a drag ends there."""
    page.evaluate("""speed => {
        const range = document.querySelector('.gatescope-player .gs-speed');
        const position = Math.round(1000 * Math.log(speed / 0.5) / Math.log(120));
        range.value = String(position);
        range.dispatchEvent(new Event('input', {bubbles: true}));
    }""", speed)


def steps_per_second(page, seconds: float, key: str = EXPLORE) -> float:
    """How far the cursor moves per second, over `seconds`, counted in the page."""
    return playback_measured(page, seconds, key)["rate"]


def playback_measured(page, seconds: float, key: str = EXPLORE) -> dict:
    """The cursor's steps per second over `seconds` ("rate"), with what a failure would need
    to be understood: the player's speed and its loop's anchor and shown step, at both ends."""
    return page.evaluate(f"""async () => {{
        const P = document.__gatescopePlayer, gd = {chart_js(key)};
        const state = () => {{ const loop = P.loops.get(gd);
            return {{cursor: {cursor_js(key)}, speed: P.speed,
                     loop: loop ? [loop.anchorT, loop.shown, loop.to] : null}}; }};
        const before = state(), start = performance.now();
        await new Promise(done => setTimeout(done, {seconds * 1000}));
        const after = state(), elapsed = (performance.now() - start) / 1000;
        return {{rate: (after.cursor - before.cursor) / elapsed, elapsed, before, after}};
    }}""")


def blur(page) -> None:
    """Leave the field that has the keys (as a click elsewhere does): keys go to the page again."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


# Each test below opens one view and checks, in turn, several things that view can show: a view
# takes seconds to open, and each part starts from wherever the one before left the cursor.

def keys_typed_into_a_field_stay_in_the_field(page) -> None:
    """From the view's start step 20, not playing."""
    seed = page.locator('[data-testid="stNumberInput"]').filter(has_text="Sample seed") \
        .locator("input")
    seed.click()
    for key in ("ArrowRight", "Home", "End", " ", "PageDown"):
        seed.press(key)
    page.wait_for_timeout(400)
    assert cursor(page) == 20 and not playing(page)
    # the player's own "play to step" field: its keys are its own too
    field = page.locator(".gatescope-player .gs-to")
    field.click()
    field.press("Home")
    field.press("ArrowLeft")
    page.wait_for_timeout(300)
    assert cursor(page) == 20
    blur(page)


def arrows_home_end_and_page_keys_step_in_the_browser(page, artifacts) -> None:
    """From step 20 of 100 steps, where the link (t=20) opened the view."""
    for key, expected in [("ArrowRight", 21), ("ArrowRight", 22), ("ArrowRight", 23),
                          ("ArrowLeft", 22), ("End", 99), ("ArrowRight", 99), ("Home", 0),
                          ("ArrowLeft", 0), ("PageDown", 1), ("PageDown", 2), ("PageUp", 1)]:
        page.keyboard.press(key)
        at_step(page, expected, f"{key} takes the cursor to step {expected}")
    # the slider's readout says the cursor's step, also between the slider's stops
    readout = page.locator(f".st-key-{EXPLORE} .slider-container text",
                           has_text="step t =").first
    assert readout.text_content() == "step t = 1"
    # no round trip: the page never reran, and the sidebar's start step is as the link set it
    assert parse_qs(urlparse(page.url).query)["t"] == ["20"]
    assert start_step(page) == "20"
    assert real_errors(page) == []
    shot(page, artifacts, "keys-stepped")


def play_to_a_step_stops_there_either_way(page) -> None:
    """From a step before 40 of 100 steps, paused."""
    set_speed(page, 60)
    page.locator(".gatescope-player .gs-to").fill("40")
    page.get_by_role("button", name="▶ Play to step").click()
    at_step(page, 40, "plays to step 40")
    wait_until(page, f"() => !{playing_js()}", "and stops there")
    page.wait_for_timeout(400)
    assert cursor(page) == 40
    field = page.locator(".gatescope-player .gs-to")
    set_speed(page, 5)
    field.fill("25")
    field.press("Enter")  # Enter in the field plays too, back to 25
    wait_until(page, f"() => {cursor_js()} < 40", "plays back towards step 25")
    page.keyboard.press(" ")  # the field let go of the keys: Space pauses on the way
    wait_until(page, f"() => !{playing_js()}", "Space pauses a play to a step")
    assert cursor(page) > 25
    # slow (5 steps/s) only while Space must catch it on the way: the rest of the way at 60
    set_speed(page, 60)
    page.locator(".gatescope-player .gs-to").press("Enter")
    at_step(page, 25, "plays on back to step 25")
    wait_until(page, f"() => !{playing_js()}", "and stops there")
    # a step beyond the last plays to the last, and says so; an empty field asks for nothing
    field.fill("5000")
    field.press("Enter")
    at_step(page, 99, "plays to the last step")
    assert field.input_value() == "99"
    field.fill("")
    field.press("Enter")
    page.wait_for_timeout(400)
    assert cursor(page) == 99 and not playing(page)
    blur(page)


def a_rerun_keeps_the_cursor_and_a_new_start_step_moves_it(page) -> None:
    """Anywhere, paused; the view reruns (last: the link's start step changes)."""
    page.keyboard.press("Home")
    for _ in range(13):
        page.keyboard.press("ArrowRight")
    at_step(page, 13, "stepped to 13")
    page.get_by_text("most variable").click()  # another choice: the page reruns
    wait_until(page, "() => location.search.includes('pick=')", "the choice reran the page",
               timeout_ms=60_000)
    wait_for_app(page)
    page.wait_for_timeout(800)
    at_step(page, 13, "the new chart keeps the visitor's step")
    # a new start step in the sidebar is the visitor's too: the chart goes there
    start = page.locator('[data-testid="stNumberInput"]').filter(has_text="Start at step t")
    start.locator("input").fill("7")
    start.locator("input").press("Enter")
    wait_until(page, "() => location.search.includes('t=7')", "the start step reran the page",
               timeout_ms=60_000)
    wait_for_app(page)
    at_step(page, 7, "the chart opens at the new start step")
    assert real_errors(page) == []


def test_a_link_at_a_step_keys_fields_play_to_a_step_and_a_rerun(page, app_url, artifacts):
    """On a link's view at step 20 of 100: keys typed into a field stay in the field; the
    arrows, Home, End and a clicker's Page keys step in the browser with no rerun; "play to
    step" stops there either way; a rerun keeps the cursor and a new start step moves it."""
    open_view(page, f"{app_url}/?task=adding&cell=lstm&len=100&t=20")
    keys_typed_into_a_field_stay_in_the_field(page)
    arrows_home_end_and_page_keys_step_in_the_browser(page, artifacts)
    play_to_a_step_stops_there_either_way(page)
    a_rerun_keeps_the_cursor_and_a_new_start_step_moves_it(page)


def space_plays_and_pauses_and_no_other_key_pauses(page) -> None:
    """From step 5, paused."""
    page.keyboard.press(" ")
    wait_until(page, f"() => {cursor_js()} > 10", "Space plays from the cursor")
    assert playing(page)
    for key in ("a", "ArrowDown", "ArrowUp", "Shift", "r", "Escape", "Enter"):
        page.keyboard.press(key)
    page.mouse.wheel(0, 200)  # nor does scrolling
    moving = cursor(page)
    wait_until(page, f"() => {cursor_js()} > {moving}", "other keys leave it playing")
    page.keyboard.press(" ")
    wait_until(page, f"() => !{playing_js()}", "Space pauses")
    paused = cursor(page)
    page.wait_for_timeout(600)
    assert cursor(page) == paused
    page.keyboard.press("ArrowRight")  # a step goes on from where Space paused
    at_step(page, paused + 1, "→ steps on from the paused step")
    assert real_errors(page) == []


def a_step_key_while_playing_pauses_there_and_steps(page) -> None:
    """From any step well before the last, paused."""
    start = cursor(page)
    page.locator(f".st-key-{EXPLORE} .updatemenu-button").nth(0).click()  # ▶ Play
    wait_until(page, f"() => {cursor_js()} > {start + 5}", "Play plays")
    page.keyboard.press("ArrowLeft")
    wait_until(page, f"() => !{playing_js()}", "← pauses the playback")
    stepped = cursor(page)
    page.wait_for_timeout(500)
    assert cursor(page) == stepped and stepped > start + 4


def a_scrub_or_another_button_takes_over_from_play(page) -> None:
    """From a step before the first quarter of 400 steps, paused."""
    chart = page.locator(f".st-key-{EXPLORE} .js-plotly-plot")
    start = cursor(page)
    chart.locator(".updatemenu-button").nth(0).click()  # ▶ Play
    wait_until(page, f"() => {cursor_js()} > {start + 5}", "Play plays")
    rail = chart.locator(".slider-rail-rect")
    rail.scroll_into_view_if_needed()  # Space's part scrolled the page
    box = rail.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    # the playback stops at once; the cursor reaches the clicked step a moment later
    wait_until(page, f"() => !{playing_js()} && Math.abs({cursor_js()} - 300) <= 50",
               "a click on the slider stops the playback there")
    scrubbed = cursor(page)
    page.wait_for_timeout(500)
    assert cursor(page) == scrubbed, (scrubbed, cursor(page))  # and nothing plays on
    chart.locator(".updatemenu-button").nth(0).click()  # ▶ Play on from the slider's step
    wait_until(page, f"() => {cursor_js()} > {scrubbed}", "Play plays on from the scrub")
    chart.locator(".updatemenu-button").nth(2).click()  # Slow: plotly.js's own, 4 steps/s
    page.wait_for_timeout(300)
    slow = steps_per_second(page, 2)
    assert 1 <= slow <= 6, slow
    chart.locator(".updatemenu-button").nth(1).click()  # ❚❚ Pause
    wait_until(page, f"() => !{playing_js()}", "Pause pauses")
    assert real_errors(page) == []


def speed_sets_how_fast_play_moves(page, artifacts) -> None:
    """Anywhere, paused, the speed untouched; it plays about 170 steps from step 0."""
    page.keyboard.press("Home")
    at_step(page, 0, "Home goes to the first step")
    page.locator(f".st-key-{EXPLORE} .updatemenu-button").nth(0).click()  # ▶ Play at 30/s
    wait_until(page, f"() => {cursor_js()} > 2", "Play plays")
    set_speed(page, 4)  # while it plays: it goes on from there, slower
    assert page.locator(".gatescope-player .gs-speed-value").inner_text() == "4 steps/s"
    measured = playback_measured(page, 2.5)
    slow = measured["rate"]
    set_speed(page, 60)
    assert page.locator(".gatescope-player .gs-speed-value").inner_text() == "60 steps/s"
    fast = steps_per_second(page, 2.5)
    # timed by the clock, so a busy machine skips steps rather than slowing down (10 steps/s
    # were counted once at 4 asked, in a suite run: the measure says what the player held)
    assert 2 <= slow <= 6, measured
    assert fast >= 6 * slow, (slow, fast)
    # a drag on the slider: its far left is the slowest speed
    box = page.locator(".gatescope-player .gs-speed").bounding_box()
    page.mouse.click(box["x"] + 1, box["y"] + box["height"] / 2)
    assert page.locator(".gatescope-player .gs-speed-value").inner_text() == "0.5 steps/s"
    assert playing(page)  # a change of speed is no rerun, and pauses nothing
    # The slider lets go of the keys as the button is released, before a key that follows at
    # once: here in the same task as the release (a blur one task later lost that key).
    page.evaluate("""() => {
        const range = document.querySelector('.gatescope-player .gs-speed');
        range.focus();
        for (const type of ['pointerdown', 'pointerup']) {
            range.dispatchEvent(new PointerEvent(type, {bubbles: true}));
        }
        document.activeElement.dispatchEvent(
            new KeyboardEvent('keydown', {key: ' ', code: 'Space', bubbles: true}));
    }""")
    wait_until(page, f"() => !{playing_js()}", "Space pauses as a drag of the speed ends")
    page.keyboard.press(" ")  # and the real keyboard's Space plays again
    wait_until(page, f"() => {playing_js()}", "Space plays after a drag of the speed")
    page.keyboard.press(" ")
    wait_until(page, f"() => !{playing_js()}", "Space pauses after a drag of the speed")
    # Space twice in one go (a double tap) ends paused: the second came before ▶ Play, which
    # the first pressed, had handed over to the player, which then played on regardless
    page.evaluate("""() => { for (let i = 0; i < 2; i++) { document.body.dispatchEvent(
        new KeyboardEvent('keydown', {key: ' ', code: 'Space', bubbles: true})); } }""")
    page.wait_for_timeout(400)
    assert not playing(page), "Space, Space left the chart playing"
    shot(page, artifacts, "speed-slowest")
    assert real_errors(page) == []


def fullscreen_keeps_the_animation(page, artifacts, steps: int) -> None:
    """Anywhere well before the last step, paused, at the default speed; `steps` is the view's
    number of steps."""
    step = cursor(page)
    frames = f"(() => {chart_js(EXPLORE)}._transitionData._frames.length)()"
    page.hover(f".st-key-{EXPLORE} .js-plotly-plot")
    page.locator(f'.st-key-{EXPLORE} .modebar-btn[data-title="Fullscreen"]').click()
    # Streamlit draws the chart again, without its frames; the player gives them back
    wait_until(page, f"() => {frames} === {steps}", f"the fullscreen chart has its {steps} frames")
    at_step(page, step, "the cursor stays at its step")
    page.keyboard.press(" ")
    wait_until(page, f"() => {cursor_js()} > {step + 7}", "Space plays in fullscreen")
    shot(page, artifacts, "fullscreen-playing")
    page.keyboard.press(" ")
    wait_until(page, f"() => !{playing_js()}", "Space pauses in fullscreen")
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)
    wait_until(page, f"() => {frames} === {steps}", "the chart keeps its frames after fullscreen")
    before = cursor(page)
    page.locator(f".st-key-{EXPLORE} .updatemenu-button").nth(0).click()  # ▶ Play
    wait_until(page, f"() => {cursor_js()} > {before}", "Play plays after fullscreen")
    assert real_errors(page) == []


def test_playing_space_step_keys_a_scrub_the_speed_and_fullscreen(page, app_url, artifacts):
    """On a link's view at step 5 of 400: Space plays and pauses and no other key pauses; a
    step key while playing pauses there and steps; a scrub or another button takes over from
    play; the speed sets how fast play moves; fullscreen keeps the animation."""
    open_view(page, f"{app_url}/?task=adding&cell=lstm&len=400&t=5")
    space_plays_and_pauses_and_no_other_key_pauses(page)
    a_step_key_while_playing_pauses_there_and_steps(page)
    a_scrub_or_another_button_takes_over_from_play(page)
    speed_sets_how_fast_play_moves(page, artifacts)
    set_speed(page, 30)  # the default again: the speed's part left it at the slowest
    fullscreen_keeps_the_animation(page, artifacts, steps=400)


def test_page_keys_press_the_tour_buttons_in_a_tour(page, app_url):
    # the "LSTM gates" tour's second step is Explore; PageDown is the tour's "Next"
    open_view(page, f"{app_url}/?task=agreement&cell=lstm&t=2&tour=lstm_gates&step=2")
    page.locator(".st-key-tour_next button").wait_for(timeout=60_000)
    wait_for_app(page)
    page.keyboard.press("ArrowRight")  # the arrows still step the chart in a tour
    at_step(page, 3, "→ steps the chart in a tour")
    page.keyboard.press("PageDown")
    wait_until(page, "() => location.search.includes('step=3')", "PageDown goes to the next step",
               timeout_ms=60_000)
    wait_for_app(page)
    page.keyboard.press("PageUp")
    wait_until(page, "() => location.search.includes('step=2')",
               "PageUp goes back to the previous step", timeout_ms=60_000)
    wait_for_app(page)
    assert real_errors(page) == []


def test_the_next_tour_step_opens_where_its_link_does_not_where_the_last_was_left(page, app_url):
    # Steps 1 and 2 of the vanishing-gradient tour are Explore views of one length and start
    # step (another cell): the player kept step 1's cursor (End: 49) into step 2, whose link
    # opens at 0. Within a step, a new figure keeps the visitor's cursor as before.
    open_view(page, f"{app_url}/?task=adding&cell=rnn&tour=vanishing_gradient&step=1")
    page.locator(".st-key-tour_next button").wait_for(timeout=60_000)
    page.keyboard.press("End")
    at_step(page, 49, "End goes to the last step")
    page.keyboard.press("PageDown")
    wait_until(page, "() => location.search.includes('step=2')", "PageDown goes to step 2",
               timeout_ms=60_000)
    wait_for_app(page)
    wait_until(page, """() => { const m = document.__gatescopePlayer.memory['explore_chart'];
                                return !!m && m.view === 'vanishing_gradient/2'; }""",
               "the player takes step 2's chart in")
    page.wait_for_timeout(300)  # where the memory were restored, the cursor would move now
    assert cursor(page) == 0
    assert real_errors(page) == []


def sidebar_step_buttons_step_in_the_browser_with_no_rerun(page) -> None:
    """From the view's start step 10 (t=10 in its link), paused; leaves it playing."""
    button = page.get_by_role("button", name="step ▶")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    for _ in range(16):  # a hurried hand: 30 ms apart, none lost
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(30)
    at_step(page, 26, "all 16 presses counted")
    page.get_by_role("button", name="◀ step").click()
    at_step(page, 25, "◀ step steps back")
    assert start_step(page) == "10" and "t=10" in page.url  # no rerun
    a_press_as_streamlit_draws_the_chart_again_counts_from_the_visitors_step(page)
    page.keyboard.press(" ")  # the button let go of the focus: Space plays
    wait_until(page, f"() => {cursor_js()} > 27", "Space plays after a step button")


def a_press_as_streamlit_draws_the_chart_again_counts_from_the_visitors_step(page) -> None:
    """From step 25 of a view that opened at step 10, paused. Streamlit draws a new chart twice,
    the second time from a copy of the figure as the server sent it, which puts the cursor back
    at the view's start step until the player restores the visitor's; on a busy machine that
    second draw can come among a visitor's first presses. A press in that moment counts from
    the visitor's step (it counted from the start step: the cursor went to 11, not 26)."""
    page.evaluate(f"""() => {{
        const gd = {chart_js(EXPLORE)};
        const copy = JSON.parse(JSON.stringify({{data: gd.data, layout: gd.layout}}));
        copy.data.find(t => t.yaxis === 'y99').x = [10, 10];  // the figure's own cursor
        window.Plotly.react(gd, copy.data, copy.layout);
        document.querySelector('.st-key-explore_step_next button').click();
    }}""")
    at_step(page, 26, "a press during Streamlit's second draw counts from step 25")
    page.wait_for_timeout(300)
    assert cursor(page) == 26


def copy_link(page) -> str:
    page.get_by_role("button", name="Copy link to this frame").click()
    field = page.locator(".gatescope-player .gs-link-text")
    field.wait_for()
    return field.input_value()


def test_step_buttons_then_copy_link_carries_the_live_cursor_and_speed_and_opens_there(
        browser, app_url, artifacts):
    """On a link's view at step 10 of 200, in a page that may use the clipboard: the sidebar's
    step buttons step in the browser with no rerun; "Copy link to this frame" copies a link
    with the live cursor and speed, and the link opens there, paused, at its speed."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_url)
    page = context.new_page()
    try:
        open_view(page, f"{app_url}/?task=adding&cell=lstm&len=200&t=10")
        sidebar_step_buttons_step_in_the_browser_with_no_rerun(page)
        page.keyboard.press(" ")
        wait_until(page, f"() => !{playing_js()}", "Space pauses")
        set_speed(page, 60)
        page.locator(f".st-key-{EXPLORE} .updatemenu-button").nth(0).click()  # ▶ Play
        wait_until(page, f"() => {cursor_js()} > 40", "Play plays")
        page.locator(f".st-key-{EXPLORE} .updatemenu-button").nth(1).click()  # ❚❚ Pause
        wait_until(page, f"() => !{playing_js()}", "paused")
        page.keyboard.press("ArrowRight")
        t = cursor(page)
        page.wait_for_timeout(200)
        assert cursor(page) == t
        set_speed(page, 12)
        shown = copy_link(page)
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == shown
        assert page.locator(".gatescope-player .gs-link-status").inner_text() == "Copied:"
        query = parse_qs(urlparse(copied).query)
        assert query["t"] == [str(t)] and query["speed"] == ["12"]
        assert query["len"] == ["200"] and query["task"] == ["adding"]
        shot(page, artifacts, "copy-link")
        # the link opens exactly there, paused, at its speed
        other = context.new_page()
        other.js_errors = []
        other.on("pageerror", lambda e: other.js_errors.append(str(e)))
        open_view(other, copied)
        assert cursor(other) == t
        assert other.locator(".gatescope-player .gs-speed-value").inner_text() == "12 steps/s"
        other.wait_for_timeout(2500)  # the landing view's autoplay presses within a second
        assert cursor(other) == t and not playing(other)
        other.keyboard.press(" ")
        wait_until(other, f"() => {cursor_js()} > {t}", "the link's view plays on from t")
        assert real_errors(other) == []
    finally:
        context.close()


def test_compare_keys_move_all_three_cursors_and_a_link_without_a_clipboard(page, app_url):
    """On Compare's view at step 5 of 60: End moves all three columns' cursors with no rerun;
    with no clipboard, "Copy link to this frame" shows the link to copy, selected."""
    open_view(page, f"{app_url}/compare?task=adding&len=60&t=5", key=COMPARE)
    page.keyboard.press("End")
    wait_until(page, f"""() => {chart_js(COMPARE)}._fullData.filter(t => t.yaxis === 'y99')
                                 .every(t => t.x[0] === 59)""", "End moves every column's cursor")
    assert len(page.evaluate(f"""() => {chart_js(COMPARE)}._fullData
                                 .filter(t => t.yaxis === 'y99').map(t => t.x[0])""")) == 3
    assert re.search(r"t=5\b", page.url)  # no rerun
    # copy link without a clipboard
    page.evaluate("""() => {  // a page served over plain http has no clipboard to write to
        Object.defineProperty(navigator, 'clipboard', {value: undefined});
        document.execCommand = () => false;
    }""")
    page.keyboard.press("Home")
    at_step(page, 0, "Home takes Compare's three columns to step 0", key=COMPARE)
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    at_step(page, 4, "→ steps Compare's three columns", key=COMPARE)
    link = copy_link(page)
    assert urlparse(link).path == "/compare"
    assert parse_qs(urlparse(link).query)["t"] == ["4"] and "speed" not in link
    assert page.locator(".gatescope-player .gs-link-status").inner_text() \
        == "Copy this link (Ctrl+C):"
    selected = page.evaluate("""() => { const f = document.activeElement;
        return f.value.substring(f.selectionStart, f.selectionEnd); }""")
    assert selected == link


def test_only_the_bare_landing_page_autoplays(page, app_url):
    open_view(page, app_url)
    wait_until(page, playing_js(), "the bare landing page plays by itself", timeout_ms=30_000)
    page.keyboard.press(" ")  # and Space pauses it
    wait_until(page, f"() => !{playing_js()}", "Space pauses the landing view")
    # a copied link at step 0, the landing view's own step: it waits; and a speed alone is a
    # prepared link too. Both open side by side (other tabs of the same visitor), so that one
    # wait covers both.
    at_zero, at_speed = page.context.new_page(), page.context.new_page()
    open_view(at_zero, f"{app_url}/?t=0")
    open_view(at_speed, f"{app_url}/?speed=5")
    at_speed.wait_for_timeout(2500)
    for tab in (at_zero, at_speed):  # a hidden tab would not run the autoplay's timers
        assert tab.evaluate("document.visibilityState") == "visible"
    assert cursor(at_zero) == 0 and not playing(at_zero)
    assert not playing(at_speed)
    assert at_speed.locator(".gatescope-player .gs-speed-value").inner_text() == "5 steps/s"
