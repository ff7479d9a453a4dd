"""core.figures.compare: three columns on one time cursor, the decay overlay, accuracy by distance."""

from __future__ import annotations

import base64
import io
import json
import math
import re

import numpy as np
import pytest
from PIL import Image

from core.figures.compare import (
    accuracy_distance_figure, compare_figure, gradient_overlay_figure, gradient_range,
)
from core.figures.player import BUTTON_LABELS
from core.figures.style import InputSequence, cell_color
from core.engine.analysis import fit_decay
from core.engine import Trace

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": (), "lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new")}


def fake_trace(cell: str, T: int = 12, H: int = 5, h_value: float | None = None,
               decay: float = 0.5) -> Trace:
    """A small trace with known values: h, gates in their ranges, gradient decaying back in time."""
    rng = np.random.default_rng(len(cell))
    hidden = (np.full((1, 1, T, H), h_value, np.float32) if h_value is not None
              else rng.uniform(-1, 1, (1, 1, T, H)).astype(np.float32))
    gates = {g: rng.uniform(0, 1, (1, 1, T, H)).astype(np.float32) for g in GATES[cell]}
    grad = (decay ** np.arange(T)[::-1]).astype(np.float32).reshape(1, 1, T)
    return Trace(cell, hidden, hidden.copy() if cell == "lstm" else None, gates, grad,
                 grad.copy() if cell == "lstm" else None, rng.uniform(0, 1, T).astype(np.float32),
                 hidden[0, 0], 0.0)


def traces(**kw) -> dict[str, Trace]:
    return {cell: fake_trace(cell, **kw) for cell in CELLS}


def words(T: int = 12) -> InputSequence:
    return InputSequence([f"w{t}" for t in range(T)])


def as_json(fig) -> dict:
    return json.loads(fig.to_json())


def image_pixels(source: str) -> np.ndarray:
    data = base64.b64decode(source.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def map_images(layout: dict) -> list[dict]:
    """The units x time maps (saliency strips are translucent, colour bars sit on the paper)."""
    return [im for im in layout["images"] if im["xref"] != "paper" and "opacity" not in im]


def test_one_column_per_cell_with_a_map_per_state_and_keep_gate():
    fig = as_json(compare_figure(traces(), words(), t0=3))
    layout = fig["layout"]
    maps = map_images(layout)
    # h for all three, the forget gate (LSTM) and the update gate (GRU): the RNN has no gate
    assert len(maps) == 5
    assert all(im["sizex"] == 12 and im["sizey"] == 5 for im in maps)
    def column(xref: str) -> str:  # every row of a column matches the column's bottom axis
        return layout["xaxis" + xref[1:]].get("matches", xref)

    assert len({column(im["xref"]) for im in maps}) == 3  # three columns
    titles = " ".join(a["text"] for a in layout["annotations"])
    for text in ("<b>RNN (vanilla)</b>", "<b>LSTM</b>", "<b>GRU</b>", "forget gate f",
                 "update gate z<br>(1 = keep h)", "no gates: a vanilla RNN"):
        assert text in titles
    cursors = [t for t in fig["data"] if t.get("name") == "cursor"]
    assert len(cursors) == 3
    assert {c["xaxis"] for c in cursors} == {column(im["xref"]) for im in maps}
    assert all(c["x"] == [3, 3] for c in cursors)


def test_the_colour_bars_sit_in_the_margin_labelled_at_their_ends_and_middle():
    """Right of the last column, where no axis can go: each bar's labels are annotations
    centred on its top, middle and bottom (and the cursor's axis shows nothing)."""
    layout = as_json(compare_figure(traces(), words()))["layout"]
    bars = [im for im in layout["images"] if im["xref"] == "paper"]
    assert len(bars) == 2 and all(b["x"] > 1 for b in bars)
    for bar, (lo, hi) in zip(bars, (("−1.00", "1.00"), ("0.00", "1.00"))):
        top, bottom = bar["y"], bar["y"] - bar["sizey"]
        labels = {a["text"]: a for a in layout["annotations"] if a.get("yanchor") == "middle"
                  and a["x"] > bar["x"] and bottom - 1e-9 <= a["y"] <= top + 1e-9}
        assert set(labels) >= {lo, hi}
        assert labels[hi]["y"] == pytest.approx(top) and labels[lo]["y"] == pytest.approx(bottom)
    assert layout["yaxis99"]["visible"] is False


def test_colour_ranges_are_fixed_not_fitted_to_the_data():
    """A hidden state that is 0.5 everywhere is drawn in the colour of 0.5 on the −1…1 scale,
    the same colour it has in a trace that also reaches −1 and 1; an autoscale would give it
    the scale's top colour."""
    flat = as_json(compare_figure(traces(h_value=0.5), words()))
    pixel = tuple(image_pixels(map_images(flat["layout"])[0]["source"])[0, 0])  # the RNN's h
    wide = fake_trace("rnn")
    wide.hidden[0, 0, 0, :] = 0.5
    wide.hidden[0, 0, 1, 0], wide.hidden[0, 0, 2, 0] = -1.0, 1.0
    other = as_json(compare_figure({"rnn": wide}, words()))
    image = image_pixels(map_images(other["layout"])[0]["source"])
    assert tuple(image[-1, 0]) == pixel  # row 0 (at the bottom), step 0 holds 0.5
    assert pixel != tuple(image[-1, image.shape[1] // 12 * 2 + 1])  # 1.0 is another colour
    assert pixel != tuple(image[-1, image.shape[1] // 12 * 1 + 1])  # and so is -1.0


def test_frames_only_move_the_cursor_the_readouts_and_the_word():
    T = 20  # too many words to print them all: the word under the cursor moves with it
    figure = compare_figure(traces(T=T), words(T))
    fig = as_json(figure)
    frames = fig["frames"]
    assert [f["name"] for f in frames] == [str(t) for t in range(T)]
    data = fig["data"]
    assert [d["name"] for d in data].count("word") == 3
    for t, frame in enumerate(frames):
        assert set(frame) <= {"name", "data", "traces", "group"}  # no layout: maps stay put
        assert sorted(frame["traces"]) == list(range(len(data)))
        for index, update in zip(frame["traces"], frame["data"]):
            name = data[index]["name"]
            if name == "cursor":
                assert update == {"x": [t, t]}
            elif name == "readout":
                assert set(update) == {"x", "y", "text", "textposition"} and update["x"] == [t]
            elif name == "word":
                assert update == {"x": [t], "text": [f"w{t}"]}
            else:
                assert update == {}
    payload = len(figure.to_json())
    assert payload < 120_000, payload


def test_gradients_share_one_log_scale_and_are_drawn_in_data_units():
    trs = traces()
    trs["rnn"].grad_hidden[:] = (0.1 ** np.arange(12)[::-1]).reshape(1, 1, 12)
    layout = as_json(compare_figure(trs, words()))["layout"]
    log_axes = {k: v for k, v in layout.items() if k.startswith("yaxis") and v.get("type") == "log"}
    grad_axes = list(log_axes.values())
    assert len(grad_axes) == 3
    assert all(a["range"] == grad_axes[0]["range"] for a in grad_axes)
    lo, hi = gradient_range(list(trs.values()))
    assert lo <= -11 and hi >= 0 and grad_axes[0]["range"] == [lo, hi]
    # plotly.js draws a path on a log axis from data values: log10 values would vanish
    paths = [s for s in layout["shapes"] if "yaxis" + s["yref"][1:] in log_axes]
    assert len(paths) == 3
    ys = [float(y) for y in re.findall(r"[ML][^,]+,([^MLZ]+)", paths[0]["path"])]
    assert min(ys) > 0 and math.isclose(max(ys), 1.0, rel_tol=1e-3)


def test_underflowed_gradient_leaves_a_gap_and_the_readout_says_so():
    trs = traces()
    trs["rnn"].grad_hidden[0, 0, :4] = 0.0
    fig = as_json(compare_figure(trs, words(), t0=0))
    readout = [t for t in fig["data"] if t["name"] == "readout"][0]
    assert readout["text"][0] == "0 (underflow)"
    path = [s for s in fig["layout"]["shapes"] if s["line"]["color"] == cell_color("rnn")][0]["path"]
    assert path.startswith("M4,")  # the line starts where the gradient is still a number


def test_numbers_input_is_drawn_as_lines_over_a_saliency_strip():
    T = 10
    values = np.stack([np.linspace(0, 1, T), (np.arange(T) == 3).astype(float)], 1)
    fig = as_json(compare_figure(traces(T=T), InputSequence([f"{v:.2f}" for v in values[:, 0]],
                                                             values, ("value", "marker"))))
    strips = [im for im in fig["layout"]["images"] if im.get("opacity") == 0.7]
    assert len(strips) == 3 and all(im["sizex"] == T for im in strips)
    assert sum(1 for s in fig["layout"]["shapes"] if s["yref"] in
               {im["yref"] for im in strips}) == 6  # two features in each of three columns


def test_long_sequences_keep_the_slider_short_and_play_visits_every_step():
    T = 1000
    fig = as_json(compare_figure(traces(T=T, H=3), words(T), t0=500))
    slider = fig["layout"]["sliders"][0]
    assert len(slider["steps"]) <= 101
    assert len(fig["frames"]) == T
    assert list(slider["steps"][slider["active"]]["args"][0]) == ["500"]
    # Explore's player: the same buttons, slider stops labelled with the bare step number
    buttons = [b["label"] for b in fig["layout"]["updatemenus"][0]["buttons"]]
    assert buttons == list(BUTTON_LABELS) == ["▶ Play", "❚❚ Pause", "Slow", "×10 from t=0"]
    assert all(s["label"] == s["args"][0][0] for s in slider["steps"])


def test_traces_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="different lengths"):
        compare_figure({"rnn": fake_trace("rnn", T=5), "lstm": fake_trace("lstm", T=6)},
                       words(6))
    with pytest.raises(ValueError):
        compare_figure({}, words())


def test_decay_overlay_names_each_cells_factor_per_step():
    decays = {"rnn": fit_decay(0.5 ** np.arange(30)), "lstm": fit_decay(0.97 ** np.arange(30)),
              "gru": fit_decay(np.r_[0.9 ** np.arange(20), np.zeros(10)])}
    fig = gradient_overlay_figure(decays)
    named = [t.name for t in fig.data if t.showlegend is not False]
    assert named[0].startswith("RNN (vanilla): ×0.500 per step, half-life 1.0 steps")
    assert named[1].startswith("LSTM: ×0.970 per step")
    assert named[2].startswith("GRU: ×0.900 per step")
    assert fig.layout.yaxis.type == "log"
    fits = [t for t in fig.data if t.line.dash == "longdashdot"]
    assert len(fits) == 3
    # the measured lines differ in style as well as colour (told apart without colour)
    assert [t.line.dash for t in fig.data if t.showlegend is not False][:3] == [
        "solid", "dash", "dot"]
    gru = [t for t in fig.data if t.name.startswith("GRU:")][0]
    assert all(y is None or not math.isfinite(y) for y in list(gru.y)[20:])  # gaps, not zeros
    assert any("underflow" in a.text for a in fig.layout.annotations)


def test_accuracy_figure_has_a_fixed_scale_and_chance():
    rows = {cell: [{"distance": d, "accuracy": a, "n": 100, "attractors": 1.0}
                   for d, a in ((1, 1.0), (2, 0.5))] for cell in CELLS}
    fig = accuracy_distance_figure(rows)
    assert [t.name for t in fig.data] == ["RNN (vanilla)", "LSTM", "GRU"]
    assert tuple(fig.layout.yaxis.range) == (-0.06, 1.03)  # 0% stands clear of the x axis
    assert any(s.y0 == 0.5 for s in fig.layout.shapes)


# -- issue 13: what the figures say ------------------------------------------------------------

def _shipped_traces(task: str = "adding") -> dict:
    from core.views import compare as cmp
    from core.views import explore as ex

    state = cmp.CompareState(task=task)
    example = cmp.make_example(state)
    return {cell: ex.run(ex.ExploreState(task=task, cell=cell), choice, example).trace
            for cell, choice in cmp.pick_models(task).items()}


def test_gradient_rows_are_relative_to_the_last_step():
    """The LSTM's and GRU's raw gradients are orders of magnitude below the RNN's only because
    they are confident; each row shows the gradient relative to its own last step."""
    from core.figures.compare import gradient_range, relative_gradient

    traces = _shipped_traces()
    for tr in traces.values():
        assert relative_gradient(tr)[-1] == pytest.approx(1.0)
    lo, hi = gradient_range(list(traces.values()))
    assert lo < 0 < hi  # 1 (the last step) is on the shared axis
    fig = compare_figure(traces, InputSequence(["x"] * 50, np.zeros((50, 2)), ("v", "m"))).to_dict()
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert any("÷ its value at the last step" in t for t in titles)


def test_decay_overlay_starts_every_line_at_one_and_marks_a_floor():
    falling = 10.0 ** (-0.5 * np.arange(29))
    norms = 0.2 * np.concatenate([falling, falling[-1] * np.ones(12)])
    fig = gradient_overlay_figure({"rnn": fit_decay(norms), "lstm": fit_decay(0.01 * 0.97 ** np.arange(41))})
    measured = [t for t in fig.data if t.showlegend is not False]
    assert all(t.y[0] == pytest.approx(1.0) for t in measured)
    assert "×0.316 per step" in measured[0].name  # the falling part's factor, not the floor's
    assert any("not fitted" in a.text for a in fig.layout.annotations)


def test_coinciding_accuracy_lines_stay_visible():
    rows = [{"distance": d, "accuracy": 1.0, "n": 100} for d in range(1, 41)]
    fig = accuracy_distance_figure({"rnn": rows, "lstm": rows, "gru": rows})
    widths = [t.line.width for t in fig.data]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    assert fig.data[-1].line.dash == "dash"


def test_a_counting_chart_marks_the_training_range_and_no_chance_line():
    rows = {cell: [{"distance": n, "accuracy": float(n <= reach), "n": 1} for n in range(1, 91)]
            for cell, reach in (("rnn", 1), ("lstm", 90), ("gru", 31))}
    fig = accuracy_distance_figure(rows, chance=None, trained_up_to=30,
                                   distance="n (a's, then as many b's)")
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].x0 == lines[0].x1 == 30  # the training range, no chance
    assert [a.text for a in fig.layout.annotations] == ["trained up to here"]
    assert fig.layout.xaxis.title.text == "n (a's, then as many b's)"
    assert "attractors" not in fig.data[0].hovertemplate  # counting's rows count nothing between


def test_the_grid_is_made_once_and_sent_without_a_template_or_axis_lines():
    # plotly.js lays a figure out again when Streamlit hands over a copy of its template, and
    # draws an axis line wherever an axis names its line colour (the template's, written in):
    # over every map's edge
    first = as_json(compare_figure(traces(), words(), t0=3))["layout"]
    second = as_json(compare_figure(traces(), words(), t0=5))["layout"]
    assert "template" not in first
    axes = [axis for key, axis in first.items()
            if key.startswith(("xaxis", "yaxis")) and axis.get("visible", True)]
    assert axes and all(axis["showline"] is False for axis in axes)
    # the cached grid is copied, never shared: one figure's axes are not the next one's
    assert first["xaxis"] is not second["xaxis"] and first["xaxis"] == second["xaxis"]


def test_a_readout_near_the_panels_top_goes_under_its_marker_and_the_word_is_never_cut():
    # "1.6e−1" above a marker at the top of the gradient panel was cut in half by its edge;
    # the word under the cursor at t = 0 lost its first letter to the axis ("ue" for "due")
    T = 20
    fig = as_json(compare_figure(traces(T=T), words(T), t0=T - 1))
    for frame in fig["frames"]:
        for index, update in zip(frame["traces"], frame["data"]):
            if fig["data"][index]["name"] == "readout":
                t, y = update["x"][0], update["y"][0]
                axis = fig["layout"]["yaxis" + fig["data"][index]["yaxis"][1:]]
                lo, hi = axis["range"]
                near_top = math.log10(y) >= hi - 0.25 * (hi - lo)
                assert update["textposition"].startswith("bottom" if near_top else "top"), t
    at_last = [d for d in fig["data"] if d["name"] == "readout"]
    assert any(d["textposition"].startswith("bottom") for d in at_last)  # the last step: 1
    assert all(d["cliponaxis"] is False for d in fig["data"] if d["name"] == "word")
