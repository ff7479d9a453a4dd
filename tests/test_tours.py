"""Guided tours and focused views: the file format's every refusal, the shipped tours (each
step's link reproduces its view), the tour bar's Previous / Next / Leave, uploads on the Tours
page, and the hide flags."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from core import claims
from core.cells import CELLS
from core.figures.style import STAGE
from core.tours import (
    HIDE_PARTS, MAX_STEPS, PAGES, STEP_FIELDS, TOUR_FIELDS, TOURS_DIR, TourError, hide_flags,
    hide_param, parse_tour, shipped_tours, step_number, upload_name,
)
from pagetest import assert_clean, open_page, shown
from ui.tours import ARRIVED

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
FORMAT = (TOURS_DIR / "FORMAT.md").read_text(encoding="utf-8")

#: What each page shows as its title or first header: how a test knows which page it is on.
PAGE_MARKS = {"explore": "gatescope · Explore", "compare": "gatescope · Compare",
              "gradient_lab": "Gradient lab", "interpret": "gatescope · Interpretability lab",
              "train": "gatescope · Train", "search": "Hyperparameter search",
              "about": "About gatescope", "tours": "Guided tours"}


def tour_text(steps: list[dict], **top) -> str:
    """A tour file's text: `top` fields (title "T" unless given) and these steps."""
    return yaml.safe_dump({"title": "T", **top, "steps": steps}, allow_unicode=True)


def step(**fields) -> dict:
    """A valid step (Explore on adding) with `fields` changed."""
    return {"page": "explore", "state": {"task": "adding"}, "title": "One",
            "narration": "Look.", **fields}


def problems(data: str | bytes) -> list[str]:
    with pytest.raises(TourError) as error:
        parse_tour(data, "t")
    return error.value.problems


# --- the format ------------------------------------------------------------------------------------

def test_a_good_tour_keeps_its_steps_as_the_pages_write_them():
    tour = parse_tour(tour_text([
        step(state={"task": "Adding", "cell": "RNN", "sample": 3.0}, notes="Say it.",
             claims=["vanishing_adding"]),
        step(page="gradient_lab", state={"cell": "lstm", "forget_bias": 3, "rescale": True}),
        step(page="about", state=None)], description="D"), "mine")
    assert (tour.name, tour.title, tour.description) == ("mine", "T", "D")
    first, lab, about = tour.steps
    # spelled as a link spells them: case folded, 3.0 a whole number, yes/no as 1/0
    assert first.state == {"task": "adding", "cell": "rnn", "sample": "3"}
    assert first.notes == "Say it." and first.claims == ("vanishing_adding",)
    assert lab.state == {"cell": "lstm", "forget_bias": "3", "rescale": "1"}
    assert about.state == {} and about.page == "about"
    assert tour.link(2, hide=["toolbar", "sidebar"]) == {
        "cell": "lstm", "forget_bias": "3", "rescale": "1", "tour": "mine", "step": "2",
        "hide": "sidebar,toolbar"}


def test_defaults_in_a_state_are_left_out_of_its_link():
    tour = parse_tour(tour_text([step(state={"task": "agreement", "cell": "lstm"})]), "t")
    assert tour.steps[0].state == {}


@pytest.mark.parametrize("data, expected", [
    ("title: T\nsteps:\n  - page: explore\n    title: A\n   narration: B\n",
     "The file is not valid YAML (line 5, column 4: "),
    ("- a\n- b\n", "The file must be a mapping with title, description and steps (it holds "
                   "a list)"),
    ("just words", "The file must be a mapping with title, description and steps (it holds "
                   "the text “just words”)"),
    ("", "The file must be a mapping with title, description and steps (it holds nothing)"),
    (b"title: caf\xe9\n", "The file is not UTF-8 text (byte 10 cannot be read): save it as UTF-8."),
    (b"#" * (64 * 1024 + 1), "The file is 64 KiB; a tour file may have at most 64 KiB."),
], ids=["bad yaml", "a list", "a scalar", "empty", "not utf-8", "too big"])
def test_a_file_that_is_no_tour_is_refused_saying_why(data, expected):
    found = problems(data)
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize("text, expected", [
    (tour_text([step()], title=None), "The tour, field “title”: missing (it is required)."),
    (tour_text([step()], title="  "), "The tour, field “title”: empty (it is required)."),
    (tour_text([step()], title="x" * 101), "The tour, field “title”: 101 characters, at most 100."),
    (tour_text([step()], description=["a"]), "The tour, field “description”: text is needed "
                                              "(found a list)."),
    (tour_text([step()], steps_=1), "The tour, field “steps_”: not a field of the format (did "
                                    "you mean “steps”? the fields are title, description, "
                                    "steps)."),
    (tour_text([]), "The tour, field “steps”: a list of at least one step is needed (found a "
                    "list)."),
    (yaml.safe_dump({"title": "T", "steps": {"a": 1}}), "The tour, field “steps”: a list of at "
                                                         "least one step is needed (found a "
                                                         "mapping)."),
    (tour_text([step()] * (MAX_STEPS + 1)), f"The tour, field “steps”: {MAX_STEPS + 1} steps, "
                                            f"at most {MAX_STEPS} (split it into two tours)."),
], ids=["no title", "blank title", "long title", "description a list", "unknown field",
        "no steps", "steps a mapping", "too many steps"])
def test_the_tour_fields_are_checked(text, expected):
    assert expected in problems(text)


@pytest.mark.parametrize("bad, expected", [
    ("a step", "Step 2: a step must be a mapping with page, state, title, narration and notes "
               "(found the text “a step”)."),
    (step(page="slides"), "Step 2 (“One”), field “page”: “slides” is not a page; the pages "
                          "are explore, compare, gradient_lab, interpret, train, search, about."),
    (step(page=None), "Step 2 (“One”), field “page”: nothing is not a page"),
    (step(title=None), "Step 2, field “title”: missing (it is required)."),
    (step(narration=None), "Step 2 (“One”), field “narration”: missing (it is required)."),
    (step(narration="x" * 901), "Step 2 (“One”), field “narration”: 901 characters, at most "
                                "900."),
    (step(notes="x" * 4001), "Step 2 (“One”), field “notes”: 4001 characters, at most 4000."),
    (step(narattion="Look."), "Step 2 (“One”), field “narattion”: not a field of the format "
                              "(did you mean “narration”?"),
    (step(state=["task", "adding"]), "Step 2 (“One”), field “state”: a mapping of the page's "
                                     "URL parameters is needed (found a list)."),
    (step(state={"celll": "gru"}), "Step 2 (“One”), field “state.celll”: the Explore page has "
                                   "no choice “celll” (did you mean “cell”?); its choices are "
                                   "task, cell,"),
    (step(state={"cell": "lstmx"}), "Step 2 (“One”), field “state.cell”: the Explore page does "
                                    "not take “lstmx”; it would drop it and show its default, "
                                    "“lstm”."),
    (step(state={"sample": -1}), "Step 2 (“One”), field “state.sample”: the Explore page does "
                                 "not take “-1”"),
    (step(state={"cell": ["lstm"]}), "Step 2 (“One”), field “state.cell”: one value is needed "
                                     "(found a list)."),
    (step(state={"task": "adding", "len": 5000}), "field “state.len”: the Explore page does "
                                                  "not take “5000”"),
    (step(state={"task": "agreement", "len": 50}), "Step 2 (“One”), field “state.len”: given "
                                                   "the step's other choices, the Explore page "
                                                   "would not keep “50”; it would show “0” (its "
                                                   "default: leave the value out if that is "
                                                   "what you mean)."),
    (step(page="compare", state={"text": "the cat"}), "Step 2 (“One”), field “state.text”: "
                                                      "given the step's other choices, the "
                                                      "Compare cells page would not keep “the "
                                                      "cat”; it would show nothing"),
    (step(page="gradient_lab", state={"len": 103}), "field “state.len”: given the step's other "
                                                    "choices, the Gradient lab page would not "
                                                    "keep “103”; it would show “105”."),
    (step(state={"source": "upload"}), "Step 2 (“One”), field “state.source”: “upload” names a "
                                       "model that only one browser session has"),
    (step(page="compare", state={"lstm": "my run"}), "field “state.lstm”: “my run” names a "
                                                     "model that only one browser session has"),
    (step(state={"step": 2}), "Step 2 (“One”), field “state.step”: “step” is set by the tour "
                              "itself, not by a step."),
    (step(page="about", state={"x": 1}), "Step 2 (“One”), field “state”: the About page has no "
                                         "choices, so its state must be empty."),
    (step(claims="vanishing_adding"), "Step 2 (“One”), field “claims”: a list of lesson names "
                                      "is needed (found the text “vanishing_adding”)."),
    (step(claims=["vanishing_addition"]), "Step 2 (“One”), field “claims”: “vanishing_addition” "
                                          "is not a lesson in content/claims.toml (did you mean "
                                          "“vanishing_adding”?)."),
], ids=["not a mapping", "unknown page", "no page", "no title", "no narration",
        "long narration", "long notes", "misspelt field", "state a list", "unknown choice",
        "value not offered", "value out of range", "value a list", "length beyond the range",
        "length that means the default", "text the page ignores", "length off the grid",
        "an upload", "a session's model", "tour parameter", "choices on About",
        "claims not a list", "unknown claim"])
def test_every_step_problem_names_its_step_and_field(bad, expected):
    found = problems(tour_text([step(), bad]))
    assert any(expected in problem for problem in found), found


def test_every_problem_is_listed_at_once():
    found = problems(tour_text([step(page="nowhere"), step(title=None, narration=None)],
                               title=None))
    assert len(found) == 4, found


def test_a_tour_name_must_be_link_safe():
    with pytest.raises(TourError, match="cannot name a tour"):
        parse_tour(tour_text([step()]), "My Tour!")


def test_steps_hide_flags_and_upload_names():
    tour = parse_tour(tour_text([step(), step()]), "t")
    assert [step_number(raw, tour) for raw in ("1", " 2 ", "3", "0", "x", None)] == \
        [1, 2, None, None, None, None]
    assert hide_flags("Sidebar, downloads,,nope") == ({"sidebar", "downloads"}, ["nope"])
    assert hide_flags(None) == (frozenset(), [])
    assert hide_param({"notes", "sidebar"}) == "sidebar,notes" and hide_param([]) == ""
    assert upload_name("Photo Synthesis (v2).YAML") == "my-photo-synthesis-v2"
    assert upload_name("!!!.yaml") == "my-tour"


# --- the documented format ------------------------------------------------------------------------

def test_the_format_document_names_every_field_page_and_hide_flag():
    for name in (*TOUR_FIELDS, *STEP_FIELDS, *PAGES):
        assert f"`{name}`" in FORMAT, name
    documented = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", FORMAT, re.MULTILINE))
    assert {k: documented[k] for k in HIDE_PARTS} == HIDE_PARTS


def test_the_format_documents_example_is_a_valid_tour():
    example = re.search(r"```yaml\n(.*?)```", FORMAT, re.DOTALL).group(1)
    tour = parse_tour(example, "example")
    assert [s.page for s in tour.steps] == ["explore", "compare"]


def test_every_tour_page_is_a_page_file():
    for page in PAGES:
        assert (ROOT / "app_pages" / f"{page}.py").is_file(), page


# --- the shipped tours ------------------------------------------------------------------------------

SHIPPED = shipped_tours()
STEPS = [(name, number) for name, tour in SHIPPED.items()
         for number in range(1, len(tour.steps) + 1)]


def test_the_three_tours_of_the_issue_ship():
    titles = {tour.title: len(tour.steps) for tour in SHIPPED.values()}
    assert titles.keys() == {"Why LSTMs and GRUs fix the vanishing gradient",
                             "Inside the LSTM's gates", "GRU or LSTM?"}
    assert 7 <= titles["Why LSTMs and GRUs fix the vanishing gradient"] <= 9
    assert all(tour.description for tour in SHIPPED.values())


def test_every_lesson_a_shipped_step_states_holds_on_the_shipped_models():
    stated = {key for tour in SHIPPED.values() for s in tour.steps for key in s.claims}
    assert stated  # the tours do state lessons, and each is checked
    assert {key: claims.evidence(key).why for key in stated if not claims.holds(key)} == {}


def test_the_counting_step_shows_the_unit_that_the_lesson_measures():
    """"A unit that counts" draws the cell-state unit the counting lesson's check found."""
    counting = next(s for s in SHIPPED["lstm_gates"].steps if s.state.get("task") == "counting"
                    and s.page == "explore")
    assert counting.state["unit"] == str(claims.values("counting_lstm")["unit"])


def test_every_shipped_state_round_trips_through_its_page_state():
    for name, number in STEPS:
        s = SHIPPED[name].steps[number - 1]
        cls = PAGES[s.page].state_class()
        if cls is not None:
            assert cls.from_query(s.state).to_query() == s.state, (name, number)


#: The charts a presented page shows: Explore's animated figure; Compare's, or one of the
#: charts under it (`show=decay`, `show=accuracy`).
PRESENTED_CHARTS = {"explore": ("explore_chart",),
                    "compare": ("compare_chart", "decay_chart", "accuracy_chart")}


def page_of(at: AppTest) -> list[str]:
    """The pages whose mark `at` shows: a title or header, or for Explore and Compare (whose
    titles and sidebars step aside while they are presented, in a tour) their animated chart."""
    marks = {e.value for e in [*at.title, *at.header]}
    for page, keys in PRESENTED_CHARTS.items():
        if any(key in chart.proto.id for key in keys for chart in at.get("plotly_chart")):
            marks.add(PAGE_MARKS[page])
    return [page for page, mark in PAGE_MARKS.items() if mark in marks]


def explored_cell(at: AppTest) -> str:
    """The cell a presented Explore page traced, as its line over the figure names it."""
    lines = shown("\n".join(m.value for m in at.markdown))
    return next(cell for cell, info in CELLS.items() if f" · {info.long_name} · " in lines)


def query(at: AppTest) -> dict[str, str]:
    return {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}


def open_link(params: dict[str, str], session: dict | None = None) -> AppTest:
    """A fresh browser session opening the app with these URL parameters (on its landing
    page, Explore: a link to another page with a tour step goes there by itself)."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (session or {}).items():
        at.session_state[key] = value
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert_clean(at)
    return at


def bar_text(at: AppTest) -> str:
    """Every caption and Markdown text of the page, as a reader sees it."""
    return shown("\n".join([*(c.value for c in at.caption), *(m.value for m in at.markdown)]))


@pytest.mark.parametrize("name, number", STEPS, ids=[f"{n}-{k}" for n, k in STEPS])
def test_each_steps_link_reproduces_its_view(name, number):
    """Open the step's link in a fresh session: its page, the tour bar with the step's texts,
    and the page publishes exactly the step's state (with the tour's parameters)."""
    tour = SHIPPED[name]
    s = tour.steps[number - 1]
    at = open_link(tour.link(number))
    assert page_of(at) == [s.page]
    text = bar_text(at)
    assert f"{tour.title} · step {number} of {len(tour.steps)}" in text
    assert f"## {s.title}" in text and s.narration.strip() in text
    assert query(at) == tour.link(number)
    assert at.button(key="tour_prev").disabled == (number == 1)
    assert at.button(key="tour_next").disabled == (number == len(tour.steps))


def test_next_and_previous_go_to_the_neighbouring_steps_page_and_state():
    tour = SHIPPED["vanishing_gradient"]
    at = open_link(tour.link(1, hide=["explanations"]))
    assert explored_cell(at) == "rnn"
    for number in (2, 3, 4):  # Explore (RNN), Explore (LSTM), Explore (GRU), then Compare
        at.button(key="tour_next").click().run()
        assert_clean(at)
        assert query(at) == tour.link(number, hide=["explanations"]), number
        assert page_of(at) == [tour.steps[number - 1].page]
        if number < 4:  # the same page again: it shows the new step's choices, not its last
            assert explored_cell(at) == ("lstm", "gru")[number - 2]
    at.button(key="tour_prev").click().run()
    assert_clean(at)
    assert query(at) == tour.link(3, hide=["explanations"]) and page_of(at) == ["explore"]
    assert explored_cell(at) == "gru"


def test_a_short_link_opens_the_steps_page_with_its_state():
    tour = SHIPPED["gru_or_lstm"]
    at = open_link({"tour": "gru_or_lstm", "step": "6"})
    assert page_of(at) == ["gradient_lab"] and query(at) == tour.link(6)
    at = open_link({"tour": "gru_or_lstm", "step": "3"})  # Explore, the landing page itself
    assert page_of(at) == ["explore"] and query(at) == tour.link(3)
    assert explored_cell(at) == "gru"


@pytest.mark.parametrize("shown, way", [(4, "back"), (3, "forward")])
def test_the_history_entry_a_switch_leaves_behind_is_passed_not_drawn(shown, way):
    """Streamlit's switch from step 3 (Explore) to step 4 (Compare) leaves a history entry of
    Explore with step 4's query. Reached by Back from step 4 (the session has shown step 4)
    or Forward from step 3, the page draws nothing and the browser goes on past it."""
    tour = SHIPPED["vanishing_gradient"]
    assert [s.page for s in tour.steps[2:4]] == ["explore", "compare"]
    at = open_link(tour.link(4), {ARRIVED: ("vanishing_gradient", shown)})
    assert page_of(at) == [] and not at.get("plotly_chart")
    scripts = "\n".join(e.proto.body for e in at.get("html"))
    assert f"history.{way}()" in scripts


def test_a_choice_changed_during_a_tour_keeps_the_tour():
    """On a step whose page shows its sidebar (the Gradient lab's; a presented Explore or
    Compare draws none)."""
    tour = SHIPPED["vanishing_gradient"]
    at = open_link(tour.link(8))
    longer = int(at.slider(key="lab_len").value + at.slider(key="lab_len").proto.step)
    at.slider(key="lab_len").set_value(longer).run()
    assert_clean(at)
    assert query(at) == {**tour.link(8), "len": str(longer)}
    assert f"{tour.title} · step 8 of" in bar_text(at)


@pytest.mark.parametrize("number", [1, 4])  # Explore, Compare
def test_a_presented_step_draws_no_sidebar_and_keeps_its_choices_for_after(number):
    """A presented page's sidebar is hidden, so it is not drawn (ui/presentation.py
    `draws_sidebar`); leaving the tour brings it back with the step's choices."""
    tour = SHIPPED["vanishing_gradient"]
    page = tour.steps[number - 1].page
    at = open_link(tour.link(number))
    widgets = [*at.selectbox, *at.radio, *at.number_input, *at.slider, *at.text_area]
    assert not widgets and not at.header  # the sidebar's "Choices", "Look at", "Time"
    at.button(key="tour_leave").click().run()
    assert_clean(at)
    state = tour.steps[number - 1].state
    assert at.selectbox(key=f"{page}_task").value == PAGES[page].state_class().from_query(
        state).task
    assert {k: v for k, v in query(at).items() if k in state} == state


def test_leaving_the_tour_keeps_the_view():
    tour = SHIPPED["vanishing_gradient"]
    at = open_link(tour.link(8, hide=["sidebar"]))
    at.button(key="tour_leave").click().run()
    assert_clean(at)
    assert query(at) == {"cell": "lstm", "forget_bias": "3", "hide": "sidebar"}
    assert tour.title not in bar_text(at) and page_of(at) == ["gradient_lab"]


@pytest.mark.parametrize("params, message", [
    ({"tour": "nope", "step": "1"}, "There is no tour called “nope” here."),
    ({"tour": "lstm_gates", "step": "99"}, "has steps 1 to 6; “99” is not one of them."),
    ({"tour": "lstm_gates", "step": "two"}, "has steps 1 to 6; “two” is not one of them."),
    ({"hide": "sidebar,everything"}, "Nothing called “everything” can be hidden"),
], ids=["unknown tour", "step beyond", "step not a number", "unknown hide flag"])
def test_a_broken_tour_link_says_what_is_wrong_and_the_page_still_shows(params, message):
    at = open_link({"task": "adding", **params})
    warned = [shown(w.value) for w in at.warning]
    assert any(message in w for w in warned), warned
    assert page_of(at) == ["explore"]  # the page, without a tour bar
    assert not [b for b in at.button if b.key in ("tour_prev", "tour_next")]


def test_a_broken_step_offers_the_first_step():
    at = open_link({"tour": "lstm_gates", "step": "0"})
    at.button(key="tour_restart").click().run()
    assert_clean(at)
    assert query(at) == SHIPPED["lstm_gates"].link(1) and page_of(at) == ["about"]


# --- hide flags -----------------------------------------------------------------------------------

def styles(at: AppTest) -> str:
    """The page's style sheets (not its scripts, which name the sidebar too)."""
    return "\n".join(re.sub(r"<script>.*?</script>", "", e.proto.body, flags=re.S) for e in at.get("html"))


def test_hide_flags_hide_the_sidebar_page_list_toolbar_and_downloads():
    at = open_link({"task": "adding", "hide": "sidebar,nav,toolbar,downloads"})
    css = styles(at)
    for testid in ("stSidebar", "stSidebarNav", "stToolbar", "stDownloadButton"):
        assert f'[data-testid="{testid}"]' in css, testid
    assert 'data-testid="stSidebar"' not in styles(open_link({"task": "adding"}))


def test_hidden_tells_the_code_that_draws_a_part_whether_to_draw_it():
    def script():
        import streamlit as st

        from ui.tours import hidden

        st.write(", ".join(p for p in ("downloads", "explanations", "notes") if hidden(p)))

    at = AppTest.from_function(script)
    at.query_params["hide"] = "Explanations,notes,bogus"
    at.run()
    assert at.markdown[0].value == "explanations, notes"


def test_notes_hide_the_speaker_notes():
    tour = SHIPPED["vanishing_gradient"]
    with_notes = open_link(tour.link(1))
    assert popover_labels(with_notes) == ["Speaker notes"]  # a button: they open over the page
    assert "Measured on the shipped models:" in bar_text(with_notes)
    without = open_link(tour.link(1, hide=["notes"]))
    assert "Speaker notes" not in popover_labels(without)


def popover_labels(at: AppTest) -> list[str]:
    return [block.proto.popover.label for block in at.get("popover")]


# --- the Tours page ---------------------------------------------------------------------------------

def open_tours_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/tours.py").run()
    assert_clean(at)
    return at


def test_the_tours_page_lists_every_shipped_tour_with_its_links():
    at = open_tours_page()
    assert [s.value for s in at.subheader] == [t.title for t in SHIPPED.values()]
    links = [e.proto for e in at.get("page_link")]
    starts = [link for link in links if link.label.startswith("Start")]
    assert len(starts) == 3
    assert len(links) == 3 + len(STEPS)
    code = "\n".join(c.value for c in at.code)
    assert "/compare?task=counting&tour=lstm_gates" not in code  # the first steps only
    assert "/about?tour=lstm_gates&step=1" in code


def test_the_focus_choice_adds_hide_to_every_link():
    at = open_tours_page()
    at.multiselect(key="tours_hide").set_value(["sidebar", "notes"]).run()
    code = "\n".join(c.value for c in at.code)
    assert code.count("hide=sidebar%2Cnotes") == 3


GOOD_UPLOAD = tour_text([step(title="Mine first", narration="My words."),
                         step(page="compare", state={"task": "agreement"}, title="Mine second",
                              narration="More words.")], title="My own tour")


def test_an_uploaded_tour_is_listed_and_presented_like_a_shipped_one():
    at = open_tours_page()
    at.file_uploader(key="tours_upload").set_value(
        ("Class 3.yaml", GOOD_UPLOAD.encode(), "application/x-yaml")).run()
    assert_clean(at)
    assert "“My own tour” is ready, 2 steps" in shown(at.success[0].value)
    assert at.subheader[-1].value == "My own tour"
    assert "/?task=adding&tour=my-class-3&step=1" in "\n".join(c.value for c in at.code)
    # its step 2, opened in the same session, goes to Compare with the step's state
    at.query_params.clear()
    at.query_params.update({"tour": "my-class-3", "step": "2"})
    at.switch_page("app_pages/explore.py").run()
    assert_clean(at)
    assert page_of(at) == ["compare"] and query(at) == {
        "task": "agreement", "tour": "my-class-3", "step": "2"}
    assert "My own tour · step 2 of 2" in bar_text(at) and "More words." in bar_text(at)


def test_a_bad_upload_lists_its_problems_and_keeps_nothing():
    at = open_tours_page()
    bad = tour_text([step(page="slides"), step(state={"cell": "lstmx"})])
    at.file_uploader(key="tours_upload").set_value(("bad.yaml", bad.encode(), "text/yaml")).run()
    assert_clean(at)
    listed = shown(at.error[0].value)
    assert "“bad.yaml” cannot be presented:" in listed
    assert "Step 1 (“One”), field “page”: “slides” is not a page" in listed
    assert "Step 2 (“One”), field “state.cell”: the Explore page does not take “lstmx”" in listed
    assert len(at.subheader) == len(SHIPPED)  # nothing added
    at.file_uploader(key="tours_upload").set_value(
        ("notes.yaml", b"\x89PNG\r\n\x1a\n", "text/yaml")).run()
    assert "The file is not UTF-8 text (byte 0 cannot be read)" in shown(at.error[0].value)


@pytest.mark.parametrize("show, task", [("accuracy", "agreement"), ("decay", "adding"),
                                        ("accuracy", "adding")])
def test_a_presented_compare_shows_the_chart_its_link_names_in_place_of_the_figure(show, task):
    """A presented page is one screen: the charts under Compare's figure are out of its reach,
    so a tour step (or present=1) that is about one of them shows it instead, made for the
    stage. adding has no accuracy chart: its link drops `show` and shows the figure."""
    at = open_page(ROOT / "app_pages" / "compare.py", task=task, show=show, present="1",
                   timeout=120)
    charts = [chart.proto.id for chart in at.get("plotly_chart")]
    wanted = "compare_chart" if (show, task) == ("accuracy", "adding") else f"{show}_chart"
    assert len(charts) == 1 and wanted in charts[0], charts
    if wanted != "compare_chart":
        fig = json.loads(at.get("plotly_chart")[0].proto.spec)
        assert fig["layout"]["width"] == STAGE.width and fig["layout"]["height"] < STAGE.height
        assert fig["layout"]["font"]["size"] >= STAGE.min_font
        assert ("show" in query(at)) == (wanted != "compare_chart")

