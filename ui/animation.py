"""The animated charts' player in the browser (ui/player.js), and what the server tells it.

Everything a visitor does with an animated chart happens in the browser, with no rerun: the
chart's own buttons and slider (plotly.js's animation, core/figures/player.py), and, added here,

- keys: ←/→ one step, Space play/pause, Home/End the first/last step, PageUp/PageDown (what a
  presenter's clicker sends) the previous/next step, or the tour's previous/next step on a page
  with tour buttons (`.st-key-tour_prev`, `.st-key-tour_next`). Keys typed into a field are the
  field's, and no key but these pauses playback;
- ▶ Play at a speed the visitor sets (0.5 to 60 steps per second), timed by the clock, and "play
  to step t" (`player_toolbar`, which ui/charts.py draws over every animated chart);
- "Copy link to this frame": the page's link with the cursor's step and the speed;
- the sidebar's step buttons (`step_buttons`) step the chart in the browser;
- the cursor stays where the visitor left it when the chart is drawn again for the same view
  (another choice changed, Streamlit's fullscreen), and a fullscreen chart keeps its frames.

And the guard that every page needs (`guard_animations`): playing charts pause before a press
that reruns the page, no animation outlives its chart, and the landing view autoplays once
(`autoplay_once`).
"""

from __future__ import annotations

import functools
import json
import math
from html import escape
from pathlib import Path

import streamlit as st

from core.figures.player import (
    CURSOR_AXIS, META_KEY, SPEED_DEFAULT, SPEED_MAX, SPEED_MIN, SPEED_PARAM, parse_speed,
)
from core.figures.readout import DECIMALS, READOUT_KEY
from ui.hidden import hidden_html
from ui.state import page_key

#: The speed a link asked for (`speed=`), kept for the session: the page writes its own URL,
#: without it, on the link's first run.
LINK_SPEED = page_key("player", "link_speed")
#: The speed slider's positions (0 .. SPEED_POSITIONS, on a log scale; ui/player.js uses the same).
SPEED_POSITIONS = 1000


@functools.lru_cache(maxsize=1)
def player_script() -> str:
    """ui/player.js with its settings filled in from core/figures/player.py."""
    config = dict(metaKey=META_KEY, cursorAxis=CURSOR_AXIS, speedMin=SPEED_MIN,
                  speedMax=SPEED_MAX, speedDefault=SPEED_DEFAULT, speedParam=SPEED_PARAM,
                  readoutKey=READOUT_KEY, readoutDecimals=DECIMALS)
    source = (Path(__file__).with_name("player.js")).read_text(encoding="utf-8")
    return source.replace("__CONFIG__", json.dumps(config))


def guard_animations() -> None:
    """Call on every run, before any widget is drawn (app.py does, for every page): installs the
    player in the browser, once per document, and keeps a link's speed for the session."""
    if (speed := parse_speed(st.query_params.get(SPEED_PARAM, ""))) is not None:
        st.session_state[LINK_SPEED] = speed
    hidden_html("gatescope_guard", f"<script>{player_script()}</script>")


def speed_position(speed: float) -> int:
    """The speed slider's position for `speed` steps per second (as ui/player.js maps it)."""
    spread = math.log(SPEED_MAX / SPEED_MIN)
    return round(SPEED_POSITIONS * math.log(speed / SPEED_MIN) / spread)


def speed_text(speed: float) -> str:
    """"30 steps/s", "2.5 steps/s" (as ui/player.js writes it)."""
    shown = round(speed, 1) if speed < 10 else round(speed)
    return f"{shown:g} steps/s"


# The page's own text colour (inherited), and borders and fields drawn from it: the toolbar
# reads on Streamlit's light and dark themes alike (fixed dark greys vanished on the dark one).
_TOOLBAR_CSS = """
.gatescope-player { display: flex; flex-wrap: wrap; align-items: center; gap: 0.4rem 1.1rem;
  font-size: 0.875rem; color: inherit; line-height: 1.6; }
.gatescope-player label, .gatescope-player .gs-group { display: inline-flex; align-items: center;
  gap: 0.45rem; white-space: nowrap; }
.gatescope-player input[type=range] { width: 9rem; accent-color: #e4002b; }
.gatescope-player .gs-speed-value { min-width: 6.2em; font-variant-numeric: tabular-nums; }
.gatescope-player button { font: inherit; color: inherit; background: transparent;
  cursor: pointer; border: 1px solid color-mix(in srgb, currentColor 30%, transparent);
  border-radius: 0.4rem; padding: 0.1rem 0.6rem; }
.gatescope-player button:hover { border-color: #e4002b; color: #e4002b; }
.gatescope-player input[type=number] { font: inherit; color: inherit; background: transparent;
  width: 5.2em; padding: 0.05rem 0.3rem;
  border: 1px solid color-mix(in srgb, currentColor 30%, transparent); border-radius: 0.4rem; }
.gatescope-player .gs-keys { opacity: 0.7; font-size: 0.8rem; }
.gatescope-player .gs-link:not([hidden]) { display: flex; align-items: center; gap: 0.45rem;
  flex-basis: 100%; }
.gatescope-player .gs-link-text { font: inherit; color: inherit; background: transparent;
  flex: 1; min-width: 10rem; max-width: 48rem; padding: 0.05rem 0.3rem;
  border: 1px solid color-mix(in srgb, currentColor 30%, transparent); border-radius: 0.4rem; }
"""


def toolbar_html(chart_key: str, speed: float) -> str:
    """The player's controls over the chart keyed `chart_key`, starting at `speed`. Plain HTML:
    ui/player.js wires every such bar by its classes, so a redraw of the bar loses nothing."""
    return f"""<style>{_TOOLBAR_CSS}</style>
<div class="gatescope-player" data-chart="{escape(chart_key)}" data-speed="{speed:g}">
  <label>▶ Play speed
    <input class="gs-speed" type="range" min="0" max="{SPEED_POSITIONS}" step="1"
           value="{speed_position(speed)}" aria-label="Play speed, steps per second">
    <output class="gs-speed-value">{speed_text(speed)}</output>
  </label>
  <span class="gs-group">
    <button class="gs-play-to" type="button">▶ Play to step</button>
    <input class="gs-to" type="number" min="0" step="1" aria-label="Play to step">
  </span>
  <button class="gs-copy" type="button">Copy link to this frame</button>
  <span class="gs-keys">Keys: ← → step · Space play/pause · Home/End · PgUp/PgDn</span>
  <div class="gs-link" hidden><span class="gs-link-status"></span>
    <input class="gs-link-text" type="text" readonly aria-label="Link to this frame"></div>
</div>"""


def player_toolbar(chart_key: str) -> None:
    """Draw the player's controls for the animated chart keyed `chart_key` (ui/charts.py draws
    them over every animated chart). A link's `speed=` is where the speed starts."""
    speed = st.session_state.get(LINK_SPEED, SPEED_DEFAULT)
    st.html(toolbar_html(chart_key, speed))


# The landing view animates with no clicks: press the chart's "Slow" button (slow, so a short
# sentence takes a few seconds rather than a blink). Only that chart (found by its Streamlit
# key), and never once the user has touched a widget or a key. Streamlit may replace a new
# chart's figure once more after it first appears (the guard then stops the loop), so for 20
# seconds a chart whose figure was replaced is pressed again. Not for visitors whose system
# asks for reduced motion.
_AUTOPLAY = """<script>
(function press(tries) {
  const win = window.parent && window.parent.document ? window.parent : window;
  if (win.matchMedia && win.matchMedia('(prefers-reduced-motion: reduce)').matches) { return; }
  if (win.document.__gatescopeTouched || tries === 0) { return; }
  const gd = win.document.querySelector('.st-key-KEY .js-plotly-plot');
  const slow = gd && gd.querySelectorAll('.updatemenu-button')[2];
  const state = gd && gd._transitionData;
  if (slow && state && state !== gd.__gatescopeAutoplayed) {
    // not pressed yet, or pressed on a figure that has since been replaced: press (again)
    slow.dispatchEvent(new MouseEvent('click', {bubbles: true}));
    gd.__gatescopeAutoplayed = gd._transitionData;
  }
  setTimeout(() => press(tries - 1), 200);
})(100);
</script>"""


def autoplay_once(chart_key: str, flag: str) -> None:
    """Start the chart drawn with `key=chart_key` playing, once per browser session (`flag`
    is the session-state key that remembers it). Needs `guard_animations()` on the page."""
    if not st.session_state.get(flag):
        st.session_state[flag] = True
        hidden_html("gatescope_autoplay", _AUTOPLAY.replace("KEY", chart_key))


def step_buttons(number_key: str, page: str) -> None:
    """"◀ step" and "step ▶" in the sidebar: in the browser they step the page's chart (keyed
    `<page>_chart`) right there, as ← and → do, so the cursor stays where the steps took it
    and no press is lost. Their callbacks step the number input keyed `number_key` (the start
    step) where there is no browser (AppTest) or no chart drawn yet."""
    def step_by(delta: int) -> None:
        st.session_state[number_key] = max(0, int(st.session_state.get(number_key, 0)) + delta)

    keys = (f"{page}_step_back", f"{page}_step_next")
    for column, label, delta, key in zip(st.columns(2), ("◀ step", "step ▶"), (-1, 1), keys):
        column.button(label, on_click=step_by, args=(delta,), width="stretch", key=key)
    chart = json.dumps(f"{page}_chart")
    hidden_html(f"gatescope_steps_{page}", f"""<script>
      (function () {{
        const doc = window.parent && window.parent.document ? window.parent.document : document;
        const buttons = doc.__gatescopeStepButtons = doc.__gatescopeStepButtons || {{}};
        buttons[{json.dumps(keys[0])}] = [{chart}, -1];
        buttons[{json.dumps(keys[1])}] = [{chart}, 1];
      }})();
    </script>""")
