"""Presentation mode: `present=1` in the URL (the Present button sets it; a tour's steps are
presented too). The sidebar, Streamlit's header and the page's own text step aside; the
animated figure is drawn as a stage figure (core.figures.style.Stage: a fixed design size,
text at least 18 px) and the browser scales it as a whole to fit the window, so at 1920 x 1080
and at 1280 x 720 all of it, the gradient row too, is on one screen, with no scrolling, and its
text grows and shrinks with the window.

Scaled with a CSS transform (plotly.js 3 reads the transform back for hover, click and drag
whenever the chart's box has changed), not by redrawing at another size: one figure, and
every part keeps its place.
"""

from __future__ import annotations

import streamlit as st

from core.figures.style import STAGE, TOUR_STAGE, Stage
from ui.charts import animated_chart, chart
from ui.hidden import hidden_html
from ui.state import PageChoices, forget_widgets

PARAM = "present"

#: Streamlit's own chrome, which a presentation hides.
_CHROME_CSS = """
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stExpandSidebarButton"], header[data-testid="stHeader"],
[data-testid="stToolbar"], [data-testid="stDecoration"] { display: none !important; }
[data-testid="stMainBlockContainer"] { padding: 0.4rem 1rem 0 1rem !important;
                                        max-width: none !important; }
[data-testid="stMain"] { overflow-x: hidden !important; }
"""

# Scales the stage figure to the window: s = the largest scale at which the figure, from
# where it starts on the page, fits the window's width and what is left of its height. Run
# again whenever the window or the page above the figure changes size (Streamlit redraws).
# Once the page is no longer presented (its URL, as `presenting`), it puts the chart back as
# it found it and stops: it had gone on scaling the page's own figure after "Exit
# presentation", drawn 1880 px wide in a box it held at that width, to a quarter of its size.
_FIT = """<script>
(function () {
  const doc = window.parent && window.parent.document ? window.parent.document : document;
  const win = doc.defaultView || window;
  const W = %(width)d, H = %(height)d, key = %(key)r;
  const BOX = ['width', 'max-width', 'overflow', 'height', 'max-height', 'flex'];
  const presented = () => {
    const query = new URLSearchParams(win.location.search);
    return query.get(%(param)r) === '1' || query.has('tour');
  };
  const fit = () => {
    const box = doc.querySelector('.st-key-' + key);
    const gd = box && box.querySelector('.js-plotly-plot');
    if (!presented()) {
      delete win.__gatescopeStageFits[key];
      if (box && box.dataset.stageScale) {
        BOX.forEach(name => box.style.removeProperty(name));
        const chart = box.querySelector('[data-testid="stPlotlyChart"]');
        if (chart) { chart.style.height = ''; chart.style.flex = ''; }
        if (gd) { gd.style.transform = ''; gd.style.transformOrigin = ''; }
        delete box.dataset.stageScale;
      }
      return;
    }
    if (!gd) { return; }
    const main = doc.querySelector('[data-testid="stMain"]') || {scrollTop: 0};
    const top = box.getBoundingClientRect().top + main.scrollTop;
    const s = Math.max(0.2, Math.min((win.innerWidth - 24) / W,
                                     (win.innerHeight - Math.max(0, top) - 6) / H));
    // Only the chart itself is scaled: Streamlit measures the element around it and sizes
    // the figure by that, so that element keeps the design's size (else the scaled size fed
    // back into the figure), and the box around both is cut to the scaled size (a page that
    // fits the window does not scroll).
    const chart = box.querySelector('[data-testid="stPlotlyChart"]');
    if (chart) { chart.style.height = H + 'px'; chart.style.flex = 'none'; }
    // (important: Streamlit's own classes size the element too)
    box.style.setProperty('width', W + 'px', 'important');
    box.style.setProperty('max-width', 'none', 'important');
    box.style.setProperty('overflow', 'hidden', 'important');
    box.style.setProperty('height', Math.ceil(H * s) + 'px', 'important');
    box.style.setProperty('max-height', Math.ceil(H * s) + 'px', 'important');
    box.style.setProperty('flex', 'none', 'important');
    gd.style.transformOrigin = '0 0';
    gd.style.transform = 'scale(' + s + ')';
    box.dataset.stageScale = s.toFixed(4);
  };
  if (!win.__gatescopeStageFits) { win.__gatescopeStageFits = {}; }
  win.__gatescopeStageFits[key] = fit;
  if (!win.__gatescopeStageWatch) {
    win.__gatescopeStageWatch = true;
    const all = () => Object.values(win.__gatescopeStageFits).forEach(f => f());
    win.addEventListener('resize', all);
    new win.MutationObserver(all).observe(doc.body, {childList: true, subtree: true});
  }
  fit();
})();
</script>"""


def presenting() -> bool:
    """Whether this page is presented: `present=1` in its URL, or a tour's step."""
    return st.query_params.get(PARAM) == "1" or "tour" in st.query_params


def presented_stage() -> Stage | None:
    """The stage a presented page draws its figure for (None: not presented): a tour step's
    text larger, for the room its tour bar takes."""
    if not presenting():
        return None
    return TOUR_STAGE if "tour" in st.query_params else STAGE


def draws_sidebar(choices: PageChoices) -> bool:
    """Whether the page of `choices` draws its sidebar's widgets on this run: not while it is
    presented, where the sidebar is hidden (`hide_chrome`) and the page shows the choices it
    keeps (the link's, the tour step's, or the visitor's from before); their widgets' state
    is dropped, so that leaving the presentation draws them anew from those choices
    (`forget_widgets`). The browser renders every element of a page again on each of its
    runs, so each one drawn costs every step of a tour: without the sidebar's 15, a step to
    Explore showed its chart 30-50 ms sooner (benchmarks/ui_speed.py). Drawn all the same
    where they hold something of the visitor's (`holds_own`): a file uploader that is not
    drawn drops its file."""
    if not presenting() or choices.state().holds_own():
        return True
    forget_widgets(choices.page, choices.state_type)
    return False


def hide_chrome() -> None:
    """Hide the sidebar and Streamlit's header and toolbar (presentation mode)."""
    hidden_html("presentation_chrome", f"<style>{_CHROME_CSS}</style>")


def present_button(key: str) -> None:
    """The button that turns presentation mode on (the URL then says present=1, so the link
    opens presented too)."""
    if st.button("Present", key=f"{key}_present", icon=":material/slideshow:",
                 help="The figure alone, as large as the window allows, for a projector: "
                      "← → step, Space plays; Exit presentation (or remove present=1 from "
                      "the link) returns."):
        st.query_params[PARAM] = "1"
        st.rerun()


def exit_button(key: str) -> None:
    """The way back from presentation mode (a tour's steps stay presented), in the window's
    top right corner: it takes no room from the figure."""
    if st.query_params.get(PARAM) != "1":
        return
    hidden_html(f"{key}_unpresent_css",
                f"<style>.st-key-{key}_unpresent {{ position: fixed; top: 0.4rem; right: 1rem; "
                "z-index: 999990; width: auto !important; }</style>")
    if st.button("Exit presentation", key=f"{key}_unpresent",
                 icon=":material/close_fullscreen:"):
        del st.query_params[PARAM]
        st.rerun()


def present_still(heading: str, fig, key: str, stage: Stage = STAGE) -> None:
    """A still chart under its `heading` (Markdown), presented as `present_figure` presents
    the animated one (`fig` made for the stage: core.figures.compare.still_on_stage); the page
    ends with it."""
    st.markdown(heading)
    exit_button(key)
    chart(fig, key=key, width="content", height=stage.height)
    hidden_html(f"{key}_fit", _FIT % {"width": stage.width, "height": stage.height, "key": key,
                                            "param": PARAM})
    st.stop()


def present_figure(fig, key: str, stage: Stage = STAGE) -> None:
    """The presented page's figure, scaled in the browser to fit the window, and the way out
    of the presentation; its page ends after it (a page may first fill the places it made
    above it, as Explore does, then stops). Drawn at its own width (Streamlit's "content": the
    figure's design width, not the page's) and fixed height (measured, the scaled box would
    feed back into the figure's size)."""
    exit_button(key)
    animated_chart(fig, key, width="content", height=stage.height)
    hidden_html(f"{key}_fit", _FIT % {"width": stage.width, "height": stage.height, "key": key,
                                            "param": PARAM})
