"""Browser-side glue for the animated charts: autoplay once, pause before a rerun, and never
leave an animation running on a chart that is gone.

Both press the chart's own Plotly buttons (the player's buttons are, in order: Play, Pause,
Slow, ×10), so the animation stays plotly.js's own; nothing here re-implements it.
"""

from __future__ import annotations

import streamlit as st

from ui.hidden import hidden_html

# Plotly.js runs an animation as a requestAnimationFrame loop bound to the figure's state at
# the moment Play was pressed. Two things orphan that loop (seen in Chromium):
# - Streamlit replaces the figure (a rerun, or its own second render of a new chart): the loop
#   keeps moving the chart, but Pause, which acts on the new state, no longer stops it;
# - Streamlit removes the chart (another page, a rerun): the loop then throws on every frame
#   ("Cannot set properties of undefined (setting '_currentFrame')", ~200 errors a time).
# So: on any press or key outside the charts and the explanations (every rerun starts with
# one), playing charts are paused first; and a watchdog stops any loop whose chart was removed
# or whose figure was replaced, whatever the cause. Installed once per browser document.
# The interrupted animation's promise rejects without a reason; that one is expected.
_GUARD_ANIMATIONS = """<script>
(function () {
  const doc = window.parent && window.parent.document ? window.parent.document : document;
  if (doc.__gatescopeGuard) { return; }
  doc.__gatescopeGuard = true;
  const charts = new Map();  // chart div -> every animation state it has had
  const stop = state => {
    if (state && state._animationRaf) {
      (doc.defaultView || window).cancelAnimationFrame(state._animationRaf);
      state._animationRaf = null;
      state._frameQueue = [];
    }
  };
  const watch = () => {
    doc.querySelectorAll('.js-plotly-plot').forEach(gd => {
      if (!charts.has(gd)) { charts.set(gd, new Set()); }
      if (gd._transitionData) { charts.get(gd).add(gd._transitionData); }
    });
    charts.forEach((states, gd) => {
      const current = gd.isConnected ? gd._transitionData : null;
      states.forEach(state => { if (state !== current) { stop(state); states.delete(state); } });
      if (!gd.isConnected) { charts.delete(gd); }
    });
  };
  new MutationObserver(watch).observe(doc.body, {childList: true, subtree: true});
  setInterval(watch, 100);
  const pauseAll = event => {
    const target = event.target;
    if (!(target instanceof Element)) { return; }
    if (target.closest('.js-plotly-plot, [data-testid="stExpander"]')) { return; }
    doc.__gatescopeTouched = true;  // from now on, no autoplay: the user is in charge
    doc.querySelectorAll('.js-plotly-plot').forEach(gd => {
      const pause = gd.querySelectorAll('.updatemenu-button')[1];
      if (pause && gd._transitionData && gd._transitionData._animationRaf) {
        pause.dispatchEvent(new MouseEvent('click', {bubbles: true}));
      }
    });
  };
  doc.addEventListener('pointerdown', pauseAll, true);
  doc.addEventListener('keydown', pauseAll, true);
  // Pausing (or any new animation) interrupts the one that plays, and plotly.js rejects the
  // interrupted animation's promise with no reason, which its own button never catches: the
  // browser reports an "Uncaught (in promise) undefined" page error on the first widget press
  // while a chart plays. Such a reason-less rejection is plotly.js's interruption, not a fault.
  (doc.defaultView || window).addEventListener('unhandledrejection', event => {
    if (event.reason === undefined) { event.preventDefault(); }
  });
})();
</script>"""

# The landing view animates with no clicks: press the chart's "Slow" button (slow, so a short
# sentence takes a few seconds rather than a blink). Only that chart (found by its Streamlit
# key), and never once the user has touched a widget. Streamlit may replace a new chart's
# figure once more after it first appears (the watchdog above then stops the loop), so for 20
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


def guard_animations() -> None:
    """Call on every run, before any widget is drawn (app.py does, for every page)."""
    hidden_html("gatescope_guard", _GUARD_ANIMATIONS)


def autoplay_once(chart_key: str, flag: str) -> None:
    """Start the chart drawn with `key=chart_key` playing, once per browser session (`flag`
    is the session-state key that remembers it). Needs `guard_animations()` on the page."""
    if not st.session_state.get(flag):
        st.session_state[flag] = True
        hidden_html("gatescope_autoplay", _AUTOPLAY.replace("KEY", chart_key))


# Streamlit sends a button press as a trigger with the next rerun, and merges the triggers of
# presses that arrive while a rerun is pending into one: rapid presses of a "step" button were
# lost (in Chromium, 16 presses 30 ms apart moved t by 4 to 6; 150 ms apart, by 8 to 11). A
# number input's own + and − keep their count in the browser and send the value, which merging
# cannot lose. So in the browser a press of a step button presses the number input's + or −
# instead (the button's own trigger, which scripts without a browser still use, is not sent).
_STEP_BY_NUMBER = """<script>
(function () {
  const doc = window.parent && window.parent.document ? window.parent.document : document;
  const pairs = doc.__gatescopeSteps = doc.__gatescopeSteps || {};
  pairs['BACK'] = ['NUMBER', 'Down'];
  pairs['NEXT'] = ['NUMBER', 'Up'];
  if (doc.__gatescopeStepsInstalled) { return; }
  doc.__gatescopeStepsInstalled = true;
  doc.addEventListener('click', event => {
    if (!(event.target instanceof Element)) { return; }
    for (const [button, [number, way]] of Object.entries(doc.__gatescopeSteps)) {
      if (!event.target.closest(`.st-key-${button} button`)) { continue; }
      const stepper = doc.querySelector(
        `.st-key-${number} [data-testid="stNumberInputStep${way}"]`);
      if (!stepper) { return; }  // no number input drawn: the button does it the slow way
      event.preventDefault();
      event.stopPropagation();
      if (!stepper.disabled) { stepper.click(); }
      return;
    }
  }, true);
})();
</script>"""


def step_by_number_input(number_key: str, back_key: str, next_key: str) -> None:
    """Make the buttons keyed `back_key` and `next_key` press the + and − of the number input
    keyed `number_key` in the browser, so that no press is lost (see `_STEP_BY_NUMBER`). Their
    on_click callbacks still serve where there is no browser (AppTest)."""
    hidden_html(f"gatescope_steps_{number_key}", _STEP_BY_NUMBER.replace("BACK", back_key)
                .replace("NEXT", next_key).replace("NUMBER", number_key))


def step_buttons(number_key: str, page: str) -> None:
    """"◀ step" and "step ▶" under the number input keyed `number_key` (the cursor's t): in
    the browser they press its − and + (`step_by_number_input`); their callbacks step it where
    there is no browser (AppTest)."""
    def step_by(delta: int) -> None:
        st.session_state[number_key] = max(0, int(st.session_state.get(number_key, 0)) + delta)

    keys = (f"{page}_step_back", f"{page}_step_next")
    for column, label, delta, key in zip(st.columns(2), ("◀ step", "step ▶"), (-1, 1), keys):
        column.button(label, on_click=step_by, args=(delta,), width="stretch", key=key)
    step_by_number_input(number_key, *keys)
