"""Presentation mode (issue 14): the stage figures (core.figures.style.Stage: a fixed design
size, no text under its minimum), the pages with present=1 (the figure alone, a way out), and
the pointing aids every Explore figure now has (the chosen unit marked on the maps, the word
at the cursor where the row is too long for every word)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.figures import style
from core.figures.compare import compare_figure
from core.figures.explore import WORDS_ROW_PX, explore_figure, map_rows, words_fit
from core.figures.style import STAGE, InputSequence, Stage, staged
from core.views import explore as ex
from core.views.models import shipped
from pagetest import open_page, shown
from test_figures import make_trace

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def traced():
    """(result, its Explore state) of the shipped agreement LSTM on its default sentence, and
    of the adding GRU (numbers, 50 steps)."""
    torch.set_num_threads(1)
    out = {}
    for task, cell in (("agreement", "lstm"), ("adding", "gru"), ("copy", "gru")):
        state = ex.ExploreState(task=task, cell=cell)
        out[task] = ex.run(state, shipped(task, cell), ex.make_example(state))
    return out


def fonts(obj, found=None) -> list[float]:
    """Every font size in a figure's dicts (a list of sizes counts each)."""
    found = [] if found is None else found
    if isinstance(obj, list):
        for item in obj:
            fonts(item, found)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("font", "textfont", "tickfont") and isinstance(value, dict) and \
                    "size" in value:
                size = value["size"]
                found += size if isinstance(size, list) else [size]
            else:
                fonts(value, found)
    return found


@pytest.mark.parametrize("task", ["agreement", "adding", "copy"])
def test_a_stage_figure_has_its_design_size_and_no_small_text(traced, task):
    result = traced[task]
    fig = explore_figure(result.trace, result.input_sequence, unit=3, stage=STAGE,
                         handoff=result.handoff).to_dict()
    layout = fig["layout"]
    assert (layout["width"], layout["height"]) == (STAGE.width, STAGE.height)
    assert layout["autosize"] is False
    sizes = [s for s in fonts([layout, fig["data"]]) if s >= 4]  # <4: the slider's hidden ticks
    assert sizes and min(sizes) >= STAGE.min_font
    # the plain figure is untouched: the house's fonts are shared dicts, never scaled in place
    plain = explore_figure(result.trace, result.input_sequence, unit=3).to_dict()
    assert min(s for s in fonts([plain["layout"], plain["data"]]) if s >= 4) < STAGE.min_font
    assert style.FONT["size"] == 14 and style.TITLE_FONT["size"] == 14
    # the diagram's circles grow with the text, so that their numbers fit
    nodes = [d for d in fig["data"] if d.get("mode") == "markers+text"][-1]
    assert max(nodes["marker"]["size"]) == round(38 * STAGE.text_scale)


def test_staged_copies_and_keeps_invisible_text_invisible():
    layout = {"font": style.FONT, "annotations": [{"text": "a", "yshift": -10,
                                                   "font": {"size": 11}}],
              "sliders": [{"font": {"size": 1}}]}
    out = staged(layout, Stage(min_font=20))
    assert out["font"]["size"] == 20 and style.FONT["size"] == 14  # a copy
    assert out["annotations"][0]["font"]["size"] == 20
    assert out["annotations"][0]["yshift"] == round(-10 * 20 / 14, 1)
    assert out["sliders"][0]["font"]["size"] == 1
    assert Stage(min_font=20).font_size(28) == 40


def test_a_stage_compare_figure_has_its_design_size_and_no_small_text(traced):
    result = traced["adding"]
    traces = {cell: result.trace for cell in ("rnn", "lstm", "gru")}
    fig = compare_figure(traces, result.input_sequence, stage=STAGE).to_dict()
    assert (fig["layout"]["width"], fig["layout"]["height"]) == (STAGE.width, STAGE.height)
    sizes = [s for s in fonts([fig["layout"], fig["data"]]) if s >= 4]
    assert min(sizes) >= STAGE.min_font


def test_the_chosen_unit_is_marked_on_every_map(traced):
    result = traced["agreement"]
    fig = explore_figure(result.trace, result.input_sequence, unit=7).to_dict()
    marks = [s for s in fig["layout"]["shapes"] if s.get("name") == "unit 7"]
    assert len(marks) == len(map_rows(result.trace))  # h, c and four gates
    assert all(s["xref"].endswith(" domain") and "1.001," in s["path"] for s in marks)
    # at the unit's row of each map: map k's row of unit u is its base + u
    ys = sorted(float(s["path"].split("L 1.001,")[1].split()[0]) for s in marks)
    assert ys[0] == 7.0 and np.ptp(np.diff(ys)) < 1e-2  # one spacing (paths keep 6 digits)


def test_a_long_row_shows_the_word_at_the_cursor_and_a_short_one_every_word(traced):
    result = traced["agreement"]
    tokens = result.tokens
    assert len(tokens) > 16  # the stage writes every word out up to 16
    fig = explore_figure(result.trace, result.input_sequence, t0=4, stage=STAGE).to_dict()
    words = [i for i, d in enumerate(fig["data"]) if d.get("name") == "word"]
    assert len(words) == 1 and fig["data"][words[0]]["text"] == [tokens[4]]
    frame = fig["frames"][9]
    moved = dict(zip(frame["traces"], frame["data"]))[words[0]]
    assert moved == {"x": [9], "text": [tokens[9]]}
    # on the page, a sentence is written out only where its words clear each other in the
    # narrowest figure (820 px: 1280 x 720, and 150% zoom of it): these do not, a short one does
    assert not words_fit(tokens, WORDS_ROW_PX, 13)
    plain = explore_figure(result.trace, result.input_sequence).to_dict()
    assert sum(d.get("name") == "word" for d in plain["data"]) == 1
    short = ["the", "cat", "sat", "on", "a", "mat"]
    tr, _ = make_trace("lstm", T=len(short), H=4)
    fig = explore_figure(tr, InputSequence(tokens=short)).to_dict()
    assert not any(d.get("name") == "word" for d in fig["data"])
    assert next(d for d in fig["data"] if d.get("name") == "input")["text"] == short


def test_stage_rows_leave_room_for_their_labels(traced):
    result = traced["copy"]
    fig = explore_figure(result.trace, result.input_sequence, stage=STAGE,
                         handoff=result.handoff).to_dict()
    layout = fig["layout"]
    # a short colour bar (a map of ~60 px) labels its two ends only
    bar_labels = [a for a in layout["annotations"] if a.get("xanchor") == "left"
                  and a.get("xref") == "paper" and a.get("yref") == "paper"
                  and a.get("text") in ("0.00", "0.50", "1.00", "−1.00")]
    assert "0.50" not in [a["text"] for a in bar_labels]


# ---------------------------------------------------------------------------------------------
# The pages


def spec(at, key: str) -> dict:
    element = next(e for e in at.get("plotly_chart") if key in e.proto.id)
    return json.loads(element.proto.spec)


@pytest.mark.parametrize("page, key", [("explore", "explore_chart"),
                                       ("compare", "compare_chart")])
def test_present_in_the_link_draws_the_stage_figure_alone(page, key):
    at = open_page(ROOT / "app_pages" / f"{page}.py", present=1, timeout=120)
    assert not at.title  # the figure alone, with one line of what it is
    figure = spec(at, key)["layout"]
    assert (figure["width"], figure["height"]) == (STAGE.width, STAGE.height)
    assert len(at.get("plotly_chart")) == 1  # nothing below it: no other chart, no table
    assert not at.table and not at.expander
    assert at.query_params["present"] == "1"  # the link still says so
    at.button(key=f"{key}_unpresent").click().run()
    assert "present" not in at.query_params
    assert at.title and "Compare" in at.title[0].value or "Explore" in at.title[0].value
    assert spec(at, key)["layout"].get("width") is None  # the page's own figure again


@pytest.mark.parametrize("page, own", [("explore", {"source": "upload"}),
                                       ("explore", {"input": "csv", "task": "airline"}),
                                       ("compare", {"lstm": "upload"})])
def test_a_presented_page_draws_its_sidebar_only_where_it_holds_the_visitors_files(page, own):
    """Presented, the sidebar is hidden and not drawn; but a file uploader not drawn drops its
    file, so where the view shows the visitor's own model or CSV it is drawn (hidden)."""
    bare = open_page(ROOT / "app_pages" / f"{page}.py", present=1, timeout=120)
    assert not bare.get("file_uploader") and not bare.selectbox and not bare.number_input
    held = open_page(ROOT / "app_pages" / f"{page}.py", present=1, timeout=120, **own)
    assert held.get("file_uploader") and held.selectbox(key=f"{page}_task")


def test_the_present_button_turns_it_on():
    at = open_page(ROOT / "app_pages" / "explore.py", task="adding", cell="gru")
    at.button(key="explore_present").click().run()
    assert at.query_params["present"] == "1"
    assert at.query_params["task"] == "adding"  # the view's own choices stay
    assert spec(at, "explore_chart")["layout"]["width"] == STAGE.width
    line = shown(at.markdown[0].value)
    assert "Adding problem · GRU" in line and "answer sum" in line and "target sum" in line


@pytest.mark.parametrize("task", ["agreement", "adding", "copy"])
def test_every_number_in_the_diagram_reads_on_its_circle(traced, task):
    """WCAG's 4.5 contrast between each node's number and its fill, at every step (issue 14:
    at 150% the numbers on dark gates could not be read)."""
    result = traced[task]
    fig = explore_figure(result.trace, result.input_sequence).to_dict()
    # the diagram's circles: the last trace drawn as markers with text (a word task's input
    # row is one too, drawn first)
    nodes = [i for i, d in enumerate(fig["data"]) if d.get("mode") == "markers+text"][-1]
    worst = 21.0
    for frame in fig["frames"]:
        update = dict(zip(frame["traces"], frame["data"]))[nodes]
        fills, texts = update["marker"]["color"], update["textfont"]["color"]
        for fill, text in zip(fills, texts):
            if fill.startswith("#"):  # the equations' numbers sit on no circle
                worst = min(worst, style.contrast_ratio(fill, text))
    assert worst >= 4.5
    assert style.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
