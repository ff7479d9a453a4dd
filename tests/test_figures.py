"""Figure builders: what a user sees in the Explore figure, checked on the figure's data."""

from __future__ import annotations

import ast
import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from core.cells import cell_info
from core.figures import explore as F
from core.figures import player as P
from core.figures import style as S
from core.figures.compare import compare_figure
from core.engine import trace
from core.io.exports import figure_html, trace_npz, trace_table


def make_trace(cell: str, T: int = 30, H: int = 8, layers: int = 1, bidirectional=False, seed=0):
    torch.manual_seed(seed)
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](
        2, H, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(T, 2)
    return trace(rnn, x), x.numpy()


def build(cell="lstm", T=30, H=8, **kw):
    tr, x = make_trace(cell, T, H)
    inp = S.InputSequence(tokens=[f"{v:.1f}" for v in x[:, 0]], values=x, value_names=("a", "b"))
    return tr, F.explore_figure(tr, inp, **kw).to_dict()


def png_pixels(uri: str) -> np.ndarray:
    """The colours a browser shows for a PNG data URI, as (rows, columns, RGB)."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


@pytest.mark.parametrize("cell, maps", [("lstm", 6), ("gru", 4), ("rnn", 1)])
def test_one_map_per_state_and_gate(cell, maps):
    tr, fig = build(cell)
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    map_images = [im for im in fig["layout"]["images"] if im["xref"] != "paper"
                  and im.get("opacity") is None]
    assert len(map_images) == maps
    for gate in cell_info(cell).gates:  # the registry's on-screen names
        assert any(t.startswith(gate.label) for t in titles), gate.label
    if cell == "gru":  # PyTorch's convention, labelled on screen
        assert any("z ≈ 1 keeps the old state" in t for t in titles)


def test_colour_scales_are_fixed_not_fitted_to_the_data():
    # A gate map coloured on 0..1: a gate of 0.5 everywhere is the scale's middle colour,
    # whatever the data's own range.
    z = np.full((4, 10), 0.5, np.float32)
    px = png_pixels(S.heatmap_png(z, 0, 1, S.GATE_SCALE, min_width=1, min_height=1))
    assert tuple(px[0, 0]) == tuple(S._cached_lut(S.GATE_SCALE)[128])
    tr, fig = build("lstm")
    assert any(t.startswith("forget gate f (0 … 1)") for t in
               (a["text"] for a in fig["layout"]["annotations"]))
    assert any(t.startswith("hidden state h (−1 … 1)") for t in
               (a["text"] for a in fig["layout"]["annotations"]))


def test_nan_shows_grey_and_finite_maps_keep_the_exact_scale_colours():
    z = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    lut = S._cached_lut(S.SIGNED_SCALE)
    px = png_pixels(S.heatmap_png(z, -1, 1, S.SIGNED_SCALE, min_width=1, min_height=1))
    idx = np.clip((z - -1) / 2 * 255, 0, 255).round().astype(int)[::-1]
    assert (px == lut[idx]).all()  # the indexed PNG shows exactly the scale's colours
    z[1, 2] = np.nan
    px = png_pixels(S.heatmap_png(z, -1, 1, S.SIGNED_SCALE, min_width=1, min_height=1))
    assert tuple(px[1, 2]) == (160, 160, 160) and tuple(px[0, 0]) == tuple(lut[idx[0, 0]])


def test_heatmap_rows_are_units_with_unit_zero_at_the_bottom():
    z = np.zeros((3, 5), np.float32)
    z[0] = 1.0  # unit 0 fully on
    px = png_pixels(S.heatmap_png(z, -1, 1, S.SIGNED_SCALE, min_width=1, min_height=1))
    assert px.shape[:2] == (3, 5)
    red = S._cached_lut(S.SIGNED_SCALE)[255]
    assert tuple(px[-1, 0]) == tuple(red) and tuple(px[0, 0]) != tuple(red)


def test_frames_move_only_the_cursor_and_the_cell_panel():
    tr, fig = build("lstm", T=40, H=16)
    frames = fig["frames"]
    assert [f["name"] for f in frames] == [str(t) for t in range(40)]
    cursor = [f["data"][-2]["x"] for f in frames]
    assert cursor[7] == [7, 7]
    # No frame carries map data: payload per frame stays tiny (never a copy of a heatmap).
    per_frame = max(len(json.dumps(f)) for f in frames)
    assert per_frame < 1500
    static = [d for f in frames for d in f["data"][:-2]]
    assert all(d == {} for d in static)
    # Every trace is listed in every frame, so plotly.js never drops one during playback.
    assert all(sorted(f["traces"]) == list(range(len(fig["data"]))) for f in frames)


def test_equations_show_the_selected_units_numbers_at_step_t():
    tr, fig = build("lstm", T=20, H=8, units=[3], unit=3)
    t = 11
    text = fig["frames"][t]["data"][-1]["text"]
    f = tr.gates["forget"][0, 0, t, 3]
    i, g = tr.gates["input"][0, 0, t, 3], tr.gates["cell"][0, 0, t, 3]
    c_prev, c = tr.cell[0, 0, t - 1, 3], tr.cell[0, 0, t, 3]
    assert any(f"<b>{S._num(float(f))}</b>" in s for s in text)
    c_line = [s for s in text if s.endswith(f"<b>{S._num(float(c))}</b>")]
    assert c_line and c_line[0].startswith(f"= {S._num(float(f))}·")
    assert np.isclose(f * c_prev + i * g, c, atol=1e-5)


def test_gru_equation_uses_pytorch_convention():
    tr, fig = build("gru", T=12, H=4, unit=1, units=[1])
    t = 5
    z = float(tr.gates["update"][0, 0, t, 1])
    line = fig["frames"][t]["data"][-1]["text"][-1]
    assert line.startswith(f"= (1 − {S._num(z)})·")
    h = tr.hidden[0, 0, :, 1]
    n = tr.gates["new"][0, 0, t, 1]
    assert np.isclose((1 - z) * n + z * h[t - 1], h[t], atol=1e-5)


def test_gradient_norms_are_on_a_log_axis_with_gaps_for_zero():
    tr, fig = build("rnn", T=50, H=8)
    grad_axes = [k for k, v in fig["layout"].items() if k.startswith("yaxis")
                 and isinstance(v, dict) and v.get("type") == "log"]
    assert len(grad_axes) == 1
    path = next(s for s in fig["layout"]["shapes"] if "∂h" in s["name"])
    # plotly.js reads path points on a log axis in data units (log10 units draw nothing visible:
    # a blank panel), while the axis range is in log10 units
    last = float(path["path"].rsplit(",", 1)[1])
    assert np.isclose(last, tr.grad_hidden[0, 0, -1], rtol=1e-3)
    axis = fig["layout"][grad_axes[0]]
    assert axis["range"][0] <= np.log10(tr.grad_hidden[0, 0].min()) <= axis["range"][1]
    p = S.line_path(np.arange(4), np.array([1.0, np.nan, 2.0, 3.0]), "x", "y", "#000", name="n")
    assert p["path"] == "M-0.3,1L0.3,1M2,2L3,3"  # a point alone is a dash: "M0,1" drew nothing


def test_a_relu_rnns_h_beyond_1_is_said_on_its_map_and_in_full_on_the_units_row():
    # its h map is drawn on tanh's -1 ... 1 (all three cells' maps read alike): the title says
    # how much is clipped, as the LSTM's cell state's does; the units' lines are not cut
    tr, x = make_trace("rnn", T=30, H=8)
    tr.hidden[0, 0, :10, 2] = np.linspace(0, 3.74, 10)
    inp = S.InputSequence(tokens=[f"{v:.1f}" for v in x[:, 0]], values=x, value_names=("a", "b"))
    fig = F.explore_figure(tr, inp, units=[2, 3], unit=2, nonlinearity="relu").to_dict()
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    share = np.mean(np.abs(tr.hidden) > 1)
    assert f"hidden state h (−1 … 1; {share:.0%} of values beyond, clipped)" in titles
    units_axis = next(v for k, v in fig["layout"].items() if k.startswith("yaxis")
                      and isinstance(v, dict) and v.get("ticktext") and "3.80" in v["ticktext"])
    assert units_axis["range"][1] > 3.8 and units_axis["tickvals"][-1] == 3.8
    _, tanh_fig = build("rnn")
    assert "hidden state h (−1 … 1)" in [a["text"] for a in tanh_fig["layout"]["annotations"]]
    tr.hidden[0, 0, 0, 2] = 30.0  # far out: −1 would sit on 0, so only 0 and the top are named
    far = F.explore_figure(tr, inp, units=[2, 3], unit=2, nonlinearity="relu").to_dict()
    assert any(isinstance(v, dict) and v.get("tickvals") == [0, 30.0]
               for k, v in far["layout"].items() if k.startswith("yaxis"))


def test_rank_units_by_activity_and_variability():
    tr, _ = make_trace("lstm", T=30, H=8)
    tr.hidden[0, 0, :, 5] = 0.9
    tr.hidden[0, 0, :, 2] = np.sin(np.arange(30))
    assert F.rank_units(tr, 0, 0, "most active")[0] == 5
    assert F.rank_units(tr, 0, 0, "most variable")[0] == 2


def test_layer_and_direction_pick_the_right_slice():
    tr, x = make_trace("gru", T=10, H=4, layers=2, bidirectional=True)
    inp = S.InputSequence(tokens=[str(i) for i in range(10)], values=x)
    fig = F.explore_figure(tr, inp, layer=1, direction=1, units=[2], unit=2).to_dict()
    path = next(s for s in fig["layout"]["shapes"] if s["name"] == "h[2]")
    first_y = float(path["path"][1:].split("L")[0].split(",")[1])
    assert np.isclose(first_y, tr.hidden[1, 1, 0, 2], atol=1e-3)
    with pytest.raises(ValueError):
        F.explore_figure(tr, inp, layer=2)


def test_words_show_tokens_and_saliency():
    tr, _ = make_trace("lstm", T=6, H=4)
    fig = F.explore_figure(tr, S.InputSequence(tokens=["the", "cat", "sat", "on", "a", "mat"]))
    tokens = fig.data[0]
    assert list(tokens.text) == ["the", "cat", "sat", "on", "a", "mat"]
    assert np.allclose(np.asarray(tokens.marker.color, float), tr.grad_input, rtol=1e-6)


def test_payload_is_within_three_times_the_raw_data():
    tr, fig = build("lstm", T=1000, H=64)
    raw = 4 * (tr.hidden[0, 0].size * 6 + 3 * 1000 + 2 * 1000)
    sent = len(pio.to_json(fig, validate=False))
    assert sent <= 3 * raw, (sent, raw)


def test_exports():
    tr, x = make_trace("lstm", T=7, H=3)
    table = trace_table(tr, 0, 0, list("abcdefg"))
    assert list(table.columns[:6]) == ["t", "token", "saliency", "grad_h_norm", "grad_c_norm", "h[0]"]
    assert len(table) == 7 and "forget[2]" in table.columns
    npz = np.load(io.BytesIO(trace_npz(tr)))
    assert np.array_equal(npz["gate_forget"], tr.gates["forget"])
    tr2, fig = build("gru", T=10, H=4)
    html = figure_html(F.explore_figure(tr2, S.InputSequence(tokens=list("abcdefghij"))), "x")
    assert "<title>x</title>" in html and "<script src=" not in html


def test_explore_and_compare_share_one_player_with_plain_number_slider_labels():
    """Both figures' buttons, slider and frames come from core/figures/player.py: the same
    buttons in the same order (ui/animation.py presses them by index), slider stops labelled
    with the bare step number (a "t · token" label costs plotly.js a forced layout per new
    text), at most MAX_SLIDER_STEPS of them with the first and last step, one frame per step,
    and the cursor on the axis y99, which shows nothing but the colour bars' tick labels."""
    T, t0 = 120, 37
    tr, x = make_trace("gru", T=T, H=4)
    inp = S.InputSequence(tokens=[f"w{t}" for t in range(T)])
    explore = F.explore_figure(tr, inp, t0=t0).to_dict()
    compare = compare_figure({"gru": tr}, inp, t0=t0).to_dict()
    for fig in (explore, compare):
        layout = fig["layout"]
        assert tuple(b["label"] for b in layout["updatemenus"][0]["buttons"]) == P.BUTTON_LABELS
        steps = layout["sliders"][0]["steps"]
        labels = [s["label"] for s in steps]
        assert labels == [str(s["args"][0][0]) for s in steps]  # the step number, nothing else
        assert all(label.isdigit() for label in labels)
        assert len(steps) <= S.MAX_SLIDER_STEPS + 2 and {"0", str(T - 1), str(t0)} <= set(labels)
        assert steps[layout["sliders"][0]["active"]]["args"][0] == [str(t0)]
        assert [f["name"] for f in fig["frames"]] == [str(t) for t in range(T)]
        assert [f["name"] for f in fig["frames"] if f.get("group") == "every10"] == \
            [str(t) for t in range(0, T, 10)]
        cursors = [d for d in fig["data"] if d.get("yaxis") == P.CURSOR_AXIS]
        assert cursors and all(c["x"] == [t0, t0] for c in cursors)
        cursor_axis = layout["yaxis99"]
        assert (cursor_axis["domain"], cursor_axis["range"]) == ([0, 1], [0, 1])
        assert not any(cursor_axis.get(k) for k in ("showline", "showgrid", "zeroline", "ticks"))
    assert P.BUTTON_LABELS == ("▶ Play", "❚❚ Pause", "Slow", "×10 from t=0")


def test_no_function_in_core_figures_is_longer_than_60_lines():
    """Figures are composed from small builders (row builders, the player, the diagram)."""
    lengths = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "core" / "figures").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lengths[f"{path.name}:{node.name}"] = node.end_lineno - start + 1
    assert lengths, "no functions found in core/figures"
    name, longest = max(lengths.items(), key=lambda item: item[1])
    assert longest <= 60, f"{name} is {longest} lines long"


def test_figures_read_names_and_equations_from_the_cell_registry():
    """Gate titles, the GRU's convention and the equations are core/cells.py's words."""
    for cell in ("rnn", "lstm", "gru"):
        tr, fig = build(cell, T=8, H=3)
        # (a line too long for the page's column is broken in two: "<br>" and an em space)
        texts = [a["text"].replace("<br>\u2003", " ") for a in fig["layout"]["annotations"]]
        for eq in cell_info(cell).equations_for("tanh"):
            assert eq in texts
    from core.cells import GRU_CONVENTION
    _, fig = build("gru", T=8, H=3)
    assert GRU_CONVENTION in [a["text"] for a in fig["layout"]["annotations"]]
    for name in ("GATE_LABELS", "SIGNED_GATES", "KEEP_GATES", "CELL_NAMES", "NO_GATE_TEXT"):
        for module in ("explore", "compare", "diagram", "style", "training", "player"):
            source = (Path(__file__).resolve().parents[1] / "core" / "figures" / f"{module}.py")
            assert f"{name} =" not in source.read_text(encoding="utf-8"), (module, name)


# -- issue 13: colour bars beside their maps, named from the registry; one fixed c scale ---------

def _explore_trace(cell: str, T: int = 20):
    torch.manual_seed(0)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](3, 8)
    from core.engine import trace
    return trace(module, torch.randn(T, 3))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_map_has_its_colour_bar_at_its_height(cell):
    tr = _explore_trace(cell)
    maps = F.map_rows(tr)
    fig = F.explore_figure(tr, S.InputSequence([str(i) for i in range(20)])).to_dict()
    bars = [im for im in fig["layout"]["images"] if im.get("xref") == "paper"]
    assert len(bars) == len(maps)
    tops = [b["y"] for b in bars]
    assert tops == sorted(tops, reverse=True)  # in the maps' order, top to bottom
    labels = {a["text"] for a in fig["layout"]["annotations"]}
    symbols = {"rnn": {"h"}, "lstm": {"h", "c", "i", "f", "g", "o"}, "gru": {"h", "r", "z", "n"}}
    assert symbols[cell] <= labels
    assert "h, g, n" not in labels
    # each bar's range at its ends (and middle): tick labels of the cursor's paper-high axis,
    # centred on the bar's edges, just right of the bars
    ticks = fig["layout"]["yaxis99"]
    assert ticks["visible"] and ticks["side"] == "right"
    assert ticks["position"] > bars[0]["x"] + bars[0]["sizex"]
    at = {round(y, 9): text for y, text in zip(ticks["tickvals"], ticks["ticktext"])}
    for bar, (key, _, _, (lo, hi)) in zip(bars, maps):
        top, bottom = round(bar["y"], 9), round(bar["y"] - bar["sizey"], 9)
        assert (at[top], at[bottom]) == (S._num(hi), S._num(lo))


def test_the_cell_state_scale_is_fixed_and_says_what_it_clips():
    tr = _explore_trace("lstm")
    assert S.cell_range(tr.cell) == S.CELL_RANGE == S.cell_range(tr.cell * 20)
    big = tr.cell * 0 + 10.0
    assert S.clipped_share(big) == 1.0 and S.clipped_share(tr.cell * 0) == 0.0
    title = dict((k, t) for k, t, *_ in F.map_rows(tr))["c"]
    assert "fixed scale" in title


def test_an_overflowed_gradient_is_said_not_silently_dropped():
    """A tanh RNN at rest whose recurrent weights triple every direction: the gradient grows
    3x per step back and overflows float32 80-odd steps back (issue 19 item 9)."""
    torch.manual_seed(0)
    rnn = torch.nn.RNN(2, 16)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(3 * torch.linalg.qr(torch.randn(16, 16))[0])
        rnn.bias_hh_l0.zero_()
        rnn.bias_ih_l0.zero_()
    with np.errstate(all="ignore"):
        tr = trace(rnn, torch.zeros(200, 2))
    note = F.overflow_note(tr, 0, 0)
    assert re.fullmatch(r"The gradient overflowed float32 \(beyond 3\.4e\+38\) at steps 0–\d+: it "
                        r"exploded back through time, and is not drawn there\.", note)
    fig = F.explore_figure(tr, S.InputSequence([str(t) for t in range(200)], np.zeros((200, 2)),
                                           ("a", "b")))
    assert any("overflowed" in a["text"] for a in fig.to_dict()["layout"]["annotations"])
    finite = trace(rnn, torch.zeros(20, 2))
    assert F.overflow_note(finite, 0, 0) == ""


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=40),
       st.booleans())
def test_a_series_of_numbers_is_written_as_each_number_alone_is(values, parenthesise):
    # `_nums` formats a whole series at once (the equations' ~8,000 numbers per figure); its
    # text must be `_num`'s for every value: signs, zeros, rounding, nan and infinities
    alone = [S._num(v) for v in values]
    if parenthesise:
        alone = [f"({t})" if t.startswith("−") else t for t in alone]
    assert S._nums(np.array(values, dtype=np.float64), parenthesise) == alone


def test_a_template_written_into_the_layout_draws_no_axis_line_the_template_did_not():
    # plotly.js draws an axis's line wherever the axis names its line colour: the template's
    # colour written into every axis drew a light line over the maps' edges
    layout = {"template": {"layout": {"xaxis": {"linecolor": "#EBF0F8"}}},
              "xaxis": {"range": [0, 1]}, "yaxis2": {"linecolor": "red"},
              "xaxis3": {"linecolor": "red", "showline": False}}
    baked = S.bake_template(layout)
    assert "template" not in baked
    assert baked["xaxis"]["linecolor"] == "#EBF0F8" and baked["xaxis"]["showline"] is False
    assert baked["yaxis2"]["showline"] is True  # its own colour: a line, as plotly.js draws it
    assert baked["xaxis3"]["showline"] is False


def test_a_figure_as_sent_is_cheap_to_draw_again_and_says_the_same():
    # Streamlit draws each chart again from a JSON copy; plotly.js redraws everything unless
    # the copy's data revision and meta compare equal to what it drew (S.redrawable).
    _, spec = build("lstm", t0=4)
    sent = S.redrawable(spec)
    again = S.redrawable(json.loads(json.dumps(spec)))
    assert isinstance(sent["layout"]["meta"], str)
    assert json.loads(sent["layout"]["meta"]) == spec["layout"]["meta"]
    assert sent["layout"]["datarevision"] == again["layout"]["datarevision"]
    assert isinstance(spec["layout"]["meta"], dict) and "datarevision" not in spec["layout"]
    assert {**sent["layout"], "meta": spec["layout"]["meta"], "datarevision": None} == \
        {**spec["layout"], "datarevision": None}
    assert sent["data"] == spec["data"] and sent["frames"] == spec["frames"]
    # another sample, or another step's numbers in the diagram: another revision
    _, other = build("lstm", t0=5)
    assert S.redrawable(other)["layout"]["datarevision"] != sent["layout"]["datarevision"]
    tr, _ = make_trace("lstm", seed=1)
    inp = S.InputSequence(tokens=["a"] * tr.seq_len, values=np.zeros((tr.seq_len, 2)),
                          value_names=("a", "b"))
    seeded = F.explore_figure(tr, inp, t0=4).to_dict()
    assert S.redrawable(seeded)["layout"]["datarevision"] != sent["layout"]["datarevision"]
    # a figure without meta gets none
    assert "meta" not in S.redrawable({"data": [], "layout": {}})["layout"]


def test_a_figure_as_sent_holds_its_arrays_as_lists_of_the_same_numbers():
    # plotly.py sends numpy arrays as base64, which plotly.js never finds equal to a copy
    y = np.array([[0.1, np.nan], [1e-9, 3.0]], dtype=np.float32)
    spec = go.Figure(go.Heatmap(z=y, x=np.arange(2, dtype=np.int8)),
                     layout={"xaxis": {"tickvals": np.array([0, 1])}}).to_dict()
    assert "bdata" in spec["data"][0]["z"]  # what plotly.py sends
    sent = S.redrawable(spec)
    trace = sent["data"][0]
    assert trace["x"] == [0, 1] and sent["layout"]["xaxis"]["tickvals"] == [0, 1]
    assert np.array_equal(np.array(trace["z"], dtype=np.float32), y, equal_nan=True)
    assert "bdata" in spec["data"][0]["z"]  # the figure itself is left as it was
