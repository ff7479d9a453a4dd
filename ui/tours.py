"""Tours and focused views in the app: the tour bar on every page, the hide flags, uploads.

app.py calls `present(page)` on every run, before the page draws: it applies `hide=` (CSS for
what the page does not draw itself; `hidden(part)` for what it does) and, when the URL carries
`tour=<name>&step=<k>`, draws the tour bar at the top: the tour's title, step k of n, the step's
title and narration, Previous / Next (keys "tour_prev" and "tour_next": a keyboard handler
clicks them on PageUp / PageDown), and the speaker notes behind a button that opens them over
the page.

A page seeds its choices from the URL only on its first run in a session (ui/state.py), so a
step's arrival forgets that page's choices and widget values first: the step's state is what
the page shows, also on its second visit in the session.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import streamlit as st

from core import claims
from core.tours import (
    HIDE_PARTS, PAGES, PRESENTATION_PARAMS, Tour, TourError, TourPage, hide_flags, parse_tour,
    shipped_tours, step_number, upload_name,
)
from ui.hidden import hidden_html
from ui.state import forget_widgets, page_key
from ui.text import plain

#: name -> core.tours.Tour: the tours this browser session uploaded on the Tours page.
UPLOADED = page_key("tours", "uploaded")
#: (tour, step) whose page state this session last applied: the step's page is on screen.
ARRIVED = page_key("tours", "arrived")
#: The page's name in ui.state.PageChoices where it is not the tour file's name for it.
CHOICES_NAME = {"gradient_lab": "lab"}
TOURS_URL_PATH = "tours"
MAX_UPLOAD_MB = 1

#: CSS for the parts that are hidden by hiding the browser's elements. Downloads are also
#: hidden here, so every download button goes, wherever it is drawn.
_HIDING_CSS = {
    "sidebar": '[data-testid="stSidebar"], [data-testid="stExpandSidebarButton"], '
               '[data-testid="stSidebarCollapseButton"]',
    "nav": '[data-testid="stSidebarNav"], [data-testid="stSidebarNavSeparator"]',
    "toolbar": '[data-testid="stToolbar"]',
    "downloads": '[data-testid="stDownloadButton"]',
}
#: The bar reads from the back of a room (narration large, title larger) and leaves the view
#: as much of the screen as it can: the page starts higher while a tour is on, and the player's
#: toolbar (speed, play to a step, a link) steps aside: the presenter has the keys and the
#: figure's own buttons, and the figure's text stays 18 px or more on a 1920 x 1080 screen.
_BAR_CSS = """<style>
.st-key-tour_narration p, .st-key-tour_narration li { font-size: 1.3rem; line-height: 1.42; }
.st-key-tour_bar h2 { font-size: 1.75rem; padding: 0; }
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
[data-testid="stElementContainer"]:has(.gatescope-player) { display: none; }
</style>"""


def hidden(part: str) -> bool:
    """Whether the URL's `hide=` hides `part` (a key of core.tours.HIDE_PARTS), so that the
    code that draws it (downloads, explanations) can leave it out."""
    return part in hide_flags(st.query_params.get("hide"))[0]


def present(current) -> None:
    """Apply the URL's hide flags and draw the tour bar of its tour step, on the page `current`
    (st.navigation's StreamlitPage). A step opened on another page (a short link, ?tour=..&step=..)
    goes to its own page."""
    flags, unknown = hide_flags(st.query_params.get("hide"))
    if css := ", ".join(_HIDING_CSS[part] for part in flags if part in _HIDING_CSS):
        st.html(f"<style>{css} {{ display: none !important; }}</style>")
    if unknown:
        st.warning(plain(f"Nothing called “{', '.join(unknown)}” can be hidden; hide= takes "
                         f"{', '.join(HIDE_PARTS)}."))
    name = st.query_params.get("tour")
    if current.url_path == TOURS_URL_PATH or name is None:
        st.session_state.pop(ARRIVED, None)  # a step opened again applies its state again
        return
    tour = find_tour(name)
    if tour is None:
        return
    number = step_number(st.query_params.get("step", "1"), tour)
    if number is None:
        st.warning(plain(f"The tour “{tour.title}” has steps 1 to {len(tour.steps)}; "
                         f"“{st.query_params.get('step')}” is not one of them."))
        if st.button("Start the tour at step 1", key="tour_restart"):
            go(tour, 1, flags)
        return
    number = pressed_step(tour, number, flags, current)
    step_page = PAGES[tour.steps[number - 1].page]
    arrived = st.session_state.get(ARRIVED)
    if current.url_path != step_page.url_path and arrived and arrived[0] == tour.name:
        passed_the_switch(tour, number, arrived[1], current)
    if arrived != (tour.name, number):
        st.session_state[ARRIVED] = (tour.name, number)
        forget_choices(step_page)
        own = {k for k in st.query_params if k not in PRESENTATION_PARAMS}
        if current.url_path != step_page.url_path or not own and tour.steps[number - 1].state:
            go(tour, number, flags)  # a short link (?tour=..&step=..): the step's page and state
    tour_bar(tour, number, flags)


def passed_the_switch(tour: Tour, number: int, shown: int, current) -> None:
    """Where the browser's Back or Forward has landed on the history entry that Streamlit
    leaves behind a step taken to another page, go on past it, drawing nothing here.

    `st.switch_page` puts the new step's query in the URL of the page it leaves (one entry)
    before it opens the new page (another). Back from the new step landed on the first: the
    page left, with this step's number, which only the session can tell apart (it has shown
    step `shown`: this one, on its own page). Drawn, it showed the step before's view under
    this step's bar, and Back had to be pressed twice. Forward onto it, from the step shown
    on this page, goes on to the step's own entry.

    The script moves the browser only from the entry it was written for, and once: Streamlit
    may mount it again after the move (seen on a busy machine), which went one entry too far
    back, onto the tour's first link, and left Forward stuck on this page."""
    if shown == number:
        way = "back"
    elif 1 <= shown <= len(tour.steps) and \
            PAGES[tour.steps[shown - 1].page].url_path == current.url_path:
        way = "forward"
    else:
        return
    hidden_html("tour_past_switch", "<script>" + past_switch_script(
        way, "/" + current.url_path, tour.name, number) + "</script>")
    st.stop()


def past_switch_script(way: str, path: str, tour: str, number: int) -> str:
    """JavaScript that takes the browser one entry `way` ("back" or "forward") from the entry
    at `path` with step `number` of `tour`, and does nothing anywhere else or a second time."""
    # "<" escaped: nothing in the values can close the <script> it is written into
    entry = json.dumps({"path": path, "tour": tour, "step": str(number)}).replace("<", "\\u003c")
    return f"""(() => {{
      const w = window.parent && window.parent.history ? window.parent : window;
      const at = {entry}, query = new URLSearchParams(w.location.search);
      if (w.location.pathname.endsWith(at.path) && query.get("tour") === at.tour
          && query.get("step") === at.step && w.gatescopePassing !== w.location.href) {{
        w.gatescopePassing = w.location.href;
        w.addEventListener("popstate", () => {{ w.gatescopePassing = null; }}, {{once: true}});
        w.history.{way}();
      }}
    }})();"""


def pressed_step(tour: Tour, number: int, flags, current) -> int:
    """The step this run shows: `number`, or its neighbour where the tour bar's Previous or
    Next was pressed. A step on this page is taken on in this very run, its link put in the
    URL; Streamlit's switch to another page takes a run of its own (`go`), begun before this
    one draws anything. Each run costs a step its time: the browser renders every element
    sent again (benchmarks/ui_speed.py, a tour step)."""
    for key, to in (("tour_prev", number - 1), ("tour_next", number + 1)):
        if st.session_state.get(key) and 1 <= to <= len(tour.steps):
            if PAGES[tour.steps[to - 1].page].url_path != current.url_path:
                go(tour, to, flags)
            st.query_params.from_dict(tour.link(to, flags))
            return to
    return number


def find_tour(name: str) -> Tour | None:
    """The shipped or this session's uploaded tour called `name`; None, with a message on the
    page, when there is none."""
    try:
        tours = all_tours()
    except TourError as error:  # a shipped file broken by an edit: say which, never a traceback
        st.error(plain("The shipped tours cannot be read: " + "; ".join(error.problems)))
        return None
    if name not in tours:
        st.warning(plain(f"There is no tour called “{name}” here. The shipped tours are "
                         f"{', '.join(shipped_tours())}; a tour uploaded on the Tours page "
                         "lives only in the browser session that uploaded it."))
        return None
    return tours[name]


def go(tour: Tour, number: int, flags) -> None:
    """Open step `number` of `tour`: its page with its state, the tour and the hide flags."""
    st.switch_page(page_file(tour.steps[number - 1].page),
                   query_params=tour.link(number, flags))


def page_file(page: str) -> str:
    """The script of tour page `page` (its tour name is its file's stem)."""
    return f"app_pages/{page}.py"


def forget_choices(page: TourPage) -> None:
    """Drop what the session keeps of `page`'s choices and their widgets, so that it seeds
    them from the URL on this run (ui.state.PageChoices)."""
    cls = page.state_class()
    if cls is None:
        return
    name = CHOICES_NAME.get(page.name, page.name)
    for key in (page_key(name, "choices"), page_key(name, "from_link")):
        st.session_state.pop(key, None)
    forget_widgets(name, cls)


def tour_bar(tour: Tour, number: int, flags) -> None:
    """The tour's title, step `number` of n, the step's title and narration, Previous, Next
    and Leave, and the speaker notes (behind a button; not drawn under hide=notes)."""
    step, count = tour.steps[number - 1], len(tour.steps)
    st.html(_BAR_CSS)
    with st.container(key="tour_bar", border=True):
        # One row that wraps: on a narrow screen the buttons go under the title, whole.
        with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
            with st.container(width="stretch"):
                st.caption(f"{plain(tour.title)} · step {number} of {count}")
                st.markdown(f"## {plain(step.title)}")
            # pressed, they take the tour on at the top of the next run (`pressed_step`)
            st.button("← Previous", key="tour_prev", disabled=number == 1)
            st.button("Next →", key="tour_next", disabled=number == count, type="primary")
            if st.button("Leave tour", key="tour_leave", help="Keep this view, without the tour"):
                leave_tour()
            measured = [claims.statement(key) for key in step.claims]
            notes = "\n\n".join([step.notes] * bool(step.notes) + [
                f"Measured on the shipped models: {text}" for text in measured if text])
            if notes and "notes" not in flags:
                # a button that opens them over the page: the view keeps the screen's height
                with st.popover("Speaker notes", key="tour_notes"):
                    st.markdown(notes)
        with st.container(key="tour_narration"):
            if all(measured):
                st.markdown(step.narration)
            else:  # the models here no longer bear its lesson out: say so, never state it
                st.info("This step's narration states a lesson that the models on this server "
                        "do not bear out, so it is not shown; the view is.")


def leave_tour() -> None:
    """The view stays; the tour and its step leave the URL, and the bar goes."""
    for key in ("tour", "step"):
        if key in st.query_params:
            del st.query_params[key]
    st.session_state.pop(ARRIVED, None)
    st.rerun()


# --- the Tours page ------------------------------------------------------------------------------

def all_tours() -> dict[str, Tour]:
    """The shipped tours, then this session's uploads."""
    return {**shipped_tours(), **st.session_state.get(UPLOADED, {})}


def link_text(tour: Tour, number: int, flags) -> str:
    """Step `number`'s link, relative to the app's address: what a teacher hands out."""
    return f"/{PAGES[tour.steps[number - 1].page].url_path}?{urlencode(tour.link(number, flags))}"


def tour_card(tour: Tour, flags, source: bytes | None = None) -> None:
    """A tour on the Tours page: title, description, Start, and every step with its link."""
    with st.container(border=True, key=f"tour_card_{tour.name}"):
        st.subheader(tour.title)
        if tour.description:
            st.markdown(tour.description)
        st.page_link(page_file(tour.steps[0].page), label=f"Start ({len(tour.steps)} steps)",
                     icon=":material/play_arrow:", query_params=tour.link(1, flags))
        with st.expander("Steps"):
            for number, step in enumerate(tour.steps, start=1):
                st.page_link(page_file(step.page), query_params=tour.link(number, flags),
                             label=f"{number}. {step.title} · {PAGES[step.page].title}")
            st.caption("The first step's link, to hand out:")
            st.code(link_text(tour, 1, flags), language=None, wrap_lines=True)
        if source is not None:
            st.download_button("Tour file (.yaml)", source, f"{tour.name}.yaml",
                               "application/x-yaml", on_click="ignore",
                               key=f"tour_file_{tour.name}")


def tour_upload() -> None:
    """A teacher's own tour file: checked, its problems listed, kept in the session if good."""
    file = st.file_uploader("Open your own tour file (.yaml)", type=["yaml", "yml"],
                            key="tours_upload", max_upload_size=MAX_UPLOAD_MB)
    if file is None:
        return
    try:
        tour = parse_tour(file.getvalue(), upload_name(file.name))
    except TourError as error:
        st.error(plain(f"“{file.name}” cannot be presented:") + "\n\n"
                 + "\n".join(f"- {plain(problem)}" for problem in error.problems))
        return
    st.session_state.setdefault(UPLOADED, {})[tour.name] = tour
    st.success(plain(f"“{tour.title}” is ready, {len(tour.steps)} steps: it is listed "
                     "above, for this browser session."))
