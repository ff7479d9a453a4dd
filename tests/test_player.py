"""The animation player's pieces: the figure's buttons, slider, frames and meta
(core/figures/player.py), the speed a link asks for, and what the server hands the browser-side
player (ui/animation.py, ui/player.js). The player itself is driven in Chromium by
tests/e2e/test_keyboard_browser.py."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.figures import player as P
from core.figures import readout as R
from pagetest import assert_clean
from ui import animation as A

APP = Path(__file__).resolve().parents[1] / "app.py"


def test_controls_carry_the_start_step_and_length_for_the_browser():
    layout = P.controls(120, 37)
    assert set(layout) == {"updatemenus", "sliders", "meta"}
    assert layout["meta"] == {P.META_KEY: {"t0": 37, "steps": 120}}
    # plain ints: the browser compares them with ===
    assert json.loads(json.dumps(layout["meta"])) == layout["meta"]


def test_buttons_in_the_order_the_browser_presses_them():
    menu = P.buttons()
    assert [b["label"] for b in menu["buttons"]] == list(P.BUTTON_LABELS)
    play, pause, slow, skim = menu["buttons"]
    # a downloaded standalone figure plays at the buttons' own durations
    assert play["args"][1]["frame"]["duration"] == P.Controls().play_ms
    assert play["args"][1]["fromcurrent"] is True
    assert pause["args"][0] == [None]  # plotly.js: interrupt whatever plays
    assert slow["args"][1]["frame"]["duration"] == P.Controls().slow_ms
    assert skim["args"][0] == P.SKIM_GROUP
    assert all(b["args"][1]["frame"]["redraw"] is False for b in menu["buttons"])


@pytest.mark.parametrize("T,t0", [(1, 0), (7, 3), (50, 49), (1000, 0), (1000, 537), (2001, 1)])
def test_slider_stops_hold_the_ends_and_the_start_step_and_stay_few(T, t0):
    stops = P.slider_stops(T, t0)
    assert stops == sorted(set(stops))
    assert {0, t0, T - 1} <= set(stops) and all(0 <= s < T for s in stops)
    assert len(stops) <= P.MAX_SLIDER_STEPS + 2
    slider = P.slider(T, t0)
    assert slider["steps"][slider["active"]]["label"] == str(t0)
    assert [s["args"][0] for s in slider["steps"]] == [[str(s)] for s in stops]


def test_every_frame_lists_every_trace_and_every_tenth_is_skimmed():
    frames = P.animation_frames(25, 4, [3, 1], lambda t: [P.cursor_at(t), {"y": [t]}])
    assert [f["name"] for f in frames] == [str(t) for t in range(25)]
    assert all(f["traces"] == [0, 2, 3, 1] for f in frames)
    assert frames[7]["data"] == [{}, {}, {"x": [7, 7]}, {"y": [7]}]
    assert [f["name"] for f in frames if f.get("group") == P.SKIM_GROUP] == ["0", "10", "20"]


def test_cursor_is_a_line_over_the_whole_height_on_the_hidden_axis():
    trace = P.cursor_trace(12, xaxis="x3", name="cursor")
    assert trace["x"] == [12, 12] and trace["y"] == [0, 1]
    assert trace["yaxis"] == P.CURSOR_AXIS and trace["xaxis"] == "x3"
    axis = P.cursor_axis()["yaxis" + P.CURSOR_AXIS[1:]]
    assert axis["range"] == [0, 1] and axis["visible"] is False


def test_the_cursor_axis_shows_colour_bar_ticks_where_it_is_given_them():
    axis = P.cursor_axis([(0.9, "1.00"), (0.5, "0.00")], x=0.7)["yaxis" + P.CURSOR_AXIS[1:]]
    assert axis["visible"] and (axis["domain"], axis["range"]) == ([0, 1], [0, 1])
    assert axis["tickvals"] == [0.9, 0.5] and axis["ticktext"] == ["1.00", "0.00"]
    assert axis["position"] == 0.7 and axis["side"] == "right" and axis["ticks"] == ""
    with pytest.raises(ValueError, match="within the plot's width"):
        P.cursor_axis([(0.9, "1.00")], x=1.02)  # in the margin: Compare's bars label by notes


@pytest.mark.parametrize("raw,speed", [
    ("12", 12.0), ("0.5", 0.5), ("60", 60.0), (" 2.5 ", 2.5), ("30.0", 30.0)])
def test_a_links_speed_within_the_range_is_read(raw, speed):
    assert P.parse_speed(raw) == speed


@pytest.mark.parametrize("raw", [
    "", "fast", "0.4", "61", "0", "-5", "nan", "inf", "-inf", "1e400", "12 steps", None, "1,5"])
def test_a_links_speed_that_is_not_a_speed_is_dropped(raw):
    assert P.parse_speed(raw) is None


def test_speed_slider_positions_are_on_a_log_scale_end_to_end():
    assert A.speed_position(P.SPEED_MIN) == 0
    assert A.speed_position(P.SPEED_MAX) == A.SPEED_POSITIONS
    # each doubling of the speed is the same distance along the slider
    one, two, four = (A.speed_position(s) for s in (1, 2, 4))
    assert abs((two - one) - (four - two)) <= 1
    assert P.SPEED_MIN <= P.SPEED_DEFAULT <= P.SPEED_MAX
    assert A.speed_text(30.0) == "30 steps/s" and A.speed_text(2.46) == "2.5 steps/s"
    assert A.speed_text(0.5) == "0.5 steps/s" and A.speed_text(59.6) == "60 steps/s"


def test_the_toolbar_names_its_chart_and_starts_at_the_speed():
    html = A.toolbar_html("compare_chart", 4.0)
    assert 'data-chart="compare_chart"' in html and 'data-speed="4"' in html
    assert f'value="{A.speed_position(4.0)}"' in html and ">4 steps/s<" in html
    for part in ("gs-speed", "gs-play-to", "gs-to", "gs-copy", "gs-link-text",
                 "Copy link to this frame", "▶ Play to step"):
        assert part in html
    assert 'data-chart="&lt;x&quot;&gt;"' in A.toolbar_html('<x">', 30.0)


def test_the_browser_player_gets_the_figures_own_names():
    script = A.player_script()
    assert "__CONFIG__" not in script
    config = json.loads(re.search(r"const CONFIG = (\{.*?\});", script).group(1))
    assert config == {"metaKey": P.META_KEY, "cursorAxis": P.CURSOR_AXIS,
                      "speedMin": P.SPEED_MIN, "speedMax": P.SPEED_MAX,
                      "speedDefault": P.SPEED_DEFAULT, "speedParam": P.SPEED_PARAM,
                      "readoutKey": R.READOUT_KEY, "readoutDecimals": R.DECIMALS}
    # the tour bar's buttons, which PageUp / PageDown press (ui/tours.py draws them)
    assert ".st-key-tour_next button" in script and ".st-key-tour_prev button" in script
    # the slider's log scale is the same on both sides
    assert "Math.round(1000 * Math.log(speed / CONFIG.speedMin) / spread)" in script
    assert A.SPEED_POSITIONS == 1000


def app(**query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    for key, value in query.items():
        at.query_params[key] = str(value)
    at.run()
    assert_clean(at)
    return at


def toolbars(at: AppTest) -> list[str]:
    return [h.proto.body for h in at.get("html") if 'class="gatescope-player"' in h.proto.body]


def test_a_links_speed_is_where_the_player_starts_and_the_page_keeps_it():
    at = app(task="adding", len=30, speed="12")
    assert at.session_state[A.LINK_SPEED] == 12.0
    [bar] = toolbars(at)
    assert 'data-chart="explore_chart"' in bar and 'data-speed="12"' in bar
    # the page writes its own URL, without the speed; the session keeps it for the player
    assert "speed" not in at.query_params
    at.number_input(key="explore_sample").increment().run()
    assert 'data-speed="12"' in toolbars(at)[0]


def test_a_links_bad_speed_starts_the_player_at_the_default():
    at = app(task="adding", len=30, speed="9999")
    assert A.LINK_SPEED not in at.session_state
    assert f'data-speed="{P.SPEED_DEFAULT:g}"' in toolbars(at)[0]
    assert not at.error and math.isclose(P.SPEED_DEFAULT, 30.0)
