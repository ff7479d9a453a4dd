"""core.figures.diagram: the cell diagram shows what the chosen layer and direction really read."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from core.engine import trace
from core.figures.diagram import (
    DIAGRAMS, NODE_FONT, NODE_SIZE, WORD_CHAR_WIDTH, WORD_MIN_FONT, cell_panel, word_font,
)

T = 7


def panel(rnn, *, layer=0, direction=0, unit=0, t0=2, tokens=None):
    torch.manual_seed(0)
    tr = trace(rnn, torch.randn(T, rnn.input_size))
    x_first_feature = np.arange(T, dtype=np.float32) / 10  # what the figure passes for numbers
    made = cell_panel(tr, layer=layer, direction=direction, unit=unit, t0=t0, tokens=tokens,
                      x_signal=x_first_feature, nonlinearity="tanh", axes=("x2", "y2"))
    return tr, made


def node(made, cell: str, key: str, t: int) -> tuple[str, str]:
    """(label, number at step t) of one node."""
    index = [n.key for n in DIAGRAMS[cell][0]].index(key)
    return made.annotations[index]["text"], made.texts_at[t][index]


def test_a_layer_above_the_first_reads_the_layer_below_not_the_input():
    torch.manual_seed(1)
    tr, made = panel(torch.nn.LSTM(2, 5, num_layers=2), layer=1, unit=3)
    label, number = node(made, "lstm", "x", 2)
    assert label == "x<sub>t</sub>[3]"
    assert number == f"{tr.hidden[0, 0, 2, 3]:.2f}".replace("-", "−")
    assert number != "0.20"  # not the raw input's first feature (0.2 at t = 2)
    _, made0 = panel(torch.nn.LSTM(2, 5, num_layers=2), layer=0)
    assert node(made0, "lstm", "x", 2) == ("x<sub>t</sub>[0]", "0.20")


def test_the_word_is_shown_only_where_the_layer_reads_words():
    words = [f"w{t}" for t in range(T)]
    _, first = panel(torch.nn.GRU(2, 4, num_layers=2), tokens=words)
    assert node(first, "gru", "x", 3) == ("x<sub>t</sub>", "w3")
    _, second = panel(torch.nn.GRU(2, 4, num_layers=2), layer=1, tokens=words)
    assert node(second, "gru", "x", 3)[1] != "w3"


def node_font(made, cell: str, key: str) -> float:
    index = [n.key for n in DIAGRAMS[cell][0]].index(key)
    return made.traces[-1]["textfont"]["size"][index]


def test_a_long_word_is_shown_whole_at_a_size_that_fits_its_circle():
    # cut to the circle, "paintings" read "paintin", another word
    words = ["the", "paintings", "on", "the", "wall", "were", "old"]
    _, made = panel(torch.nn.LSTM(2, 4), tokens=words)
    assert node(made, "lstm", "x", 1)[1] == "paintings"
    size = node_font(made, "lstm", "x")
    assert WORD_MIN_FONT <= size < NODE_FONT
    # as large as fits (by the width it reckons with), or its floor
    assert size == WORD_MIN_FONT or len("paintings") * WORD_CHAR_WIDTH * size <= NODE_SIZE
    assert node_font(made, "lstm", "h") == NODE_FONT  # the numbers keep theirs
    # one size for every step (the word does not jump in size as the cursor moves)
    assert word_font(words) == word_font(["paintings"])
    _, short = panel(torch.nn.LSTM(2, 4), tokens=["a", "cat", "sat", "on", "the", "mat", "ok"])
    assert node_font(short, "lstm", "x") == NODE_FONT
    assert word_font(["internationalisation"]) == WORD_MIN_FONT  # longer still: past the edge


@pytest.mark.parametrize("module", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN])
def test_a_reverse_direction_starts_each_step_from_step_t_plus_1(module):
    tr, made = panel(module(2, 4, bidirectional=True), direction=1, unit=1, t0=2)
    cell = tr.cell_type
    label, number = node(made, cell, "h_prev", 2)
    assert label == "h<sub>t+1</sub>"
    assert number == f"{tr.hidden[0, 1, 3, 1]:.2f}".replace("-", "−")
    text = " ".join(a["text"] for a in made.annotations)
    assert "t−1" not in text and "t+1" in text
    _, forward = panel(module(2, 4, bidirectional=True), direction=0)
    assert node(forward, cell, "h_prev", 2)[0] == "h<sub>t−1</sub>"


def test_the_vanilla_rnn_diagram_has_no_arrow_back_from_h_t():
    _, edges = DIAGRAMS["rnn"]
    assert ("h", "h_prev") not in edges and ("h_prev", "pre") in edges


def test_visible_length_counts_what_a_line_shows():
    from core.figures.diagram import SUBSCRIPT_SHARE, visible_length

    assert visible_length("= <b>0.57</b>") == len("= 0.57")
    assert visible_length("h<sub>t−1</sub>") == pytest.approx(1 + 3 * SUBSCRIPT_SHARE)


def test_a_long_equation_or_column_of_numbers_goes_on_two_lines_all_steps_alike():
    from core.figures.diagram import visible_length, wrapped

    short, long = "= 0.1 + 0.2 = <b>0.3</b>", "= (1 − 0.52)·(−0.15) + 0.52·0.00 = <b>−0.07</b>"
    assert wrapped([short], 36, " = ", last=True) == [short]
    both = wrapped([short, long], 36, " = ", last=True)
    assert both == ["= 0.1 + 0.2<br>\u2003= <b>0.3</b>", "= (1 − 0.52)·(−0.15) + 0.52·0.00<br>\u2003= <b>−0.07</b>"]
    (n_t,) = wrapped([cell_info_equation("gru", 2)], 36, " + ")
    first, second = n_t.split("<br>")
    assert second.startswith("\u2003+ r<sub>t</sub>")  # broken at the " + " nearest the middle
    assert max(visible_length(first), visible_length(second)) <= 36


def cell_info_equation(cell: str, k: int) -> str:
    from core.cells import cell_info
    return cell_info(cell).equations[k]


def test_a_page_panel_fits_its_column_and_a_slide_panel_keeps_one_line_each():
    """The page's figure breaks what its narrowest right column cannot hold (the GRU's n_t);
    the PNG export (no line_chars) and a stage's wide column keep every equation whole."""
    from core.figures.diagram import visible_length
    from core.figures.explore import _Geometry
    from core.figures.style import Stage

    rnn = torch.nn.GRU(3, 4)
    torch.manual_seed(0)
    tr = trace(rnn, torch.randn(T, 3))
    common = dict(layer=0, direction=0, unit=0, t0=2, tokens=None, x_signal=np.zeros(T, np.float32),
                  nonlinearity="tanh", axes=("x2", "y2"))
    page_chars = _Geometry.of(4, 120).panel_line_chars()
    page = cell_panel(tr, **common, line_chars=page_chars)
    left = [a["text"] for a in page.annotations if a.get("xanchor") == "left"]
    texts = left[1:1 + len(page.numbers[0])]  # the equations: not their heading or the note
    lines = [line for text in texts + [n for row in page.numbers for n in row] for line in text.split("<br>")]
    assert any("<br>" in text for text in texts)
    assert max(map(visible_length, lines)) <= page_chars
    wrapped_eq = next(a for a in page.annotations if "<br>" in a["text"])
    assert wrapped_eq["align"] == "left" and wrapped_eq["yshift"] > 0
    for stage_like in (cell_panel(tr, **common),
                       cell_panel(tr, **common, line_chars=_Geometry.staged(4, Stage()).panel_line_chars())):
        assert not any("<br>" in a["text"] for a in stage_like.annotations)


def rnn_pre_activations(rnn: torch.nn.RNN, x: torch.Tensor) -> np.ndarray:
    """(T, H) W_ih x_t + b_ih + W_hh h_{t-1} + b_hh of a one-layer RNN, step by step."""
    h, pres = torch.zeros(rnn.hidden_size), []
    with torch.no_grad():
        for x_t in x:
            pre = rnn.weight_ih_l0 @ x_t + rnn.bias_ih_l0 + rnn.weight_hh_l0 @ h + rnn.bias_hh_l0
            h = torch.relu(pre) if rnn.nonlinearity == "relu" else torch.tanh(pre)
            pres.append(pre)
    return torch.stack(pres).double().numpy()


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_the_rnns_pre_activation_is_the_true_one_or_the_bound_it_is_known_to_pass(nonlinearity):
    # A relu RNN's a showed tanh's inverse of h (0.00 for a of -0.39), and a saturated tanh
    # showed atanh of its clipped value (7.25 whatever a was): numbers a student would trust.
    from core.figures.style import READABLE_PRE_ACTIVATION, _num

    torch.manual_seed(3)
    rnn = torch.nn.RNN(2, 4, nonlinearity=nonlinearity)
    with torch.no_grad():
        rnn.weight_ih_l0.mul_(8)  # some steps far out, some near 0
    x = torch.randn(24, 2)
    tr = trace(rnn, x)
    made = cell_panel(tr, layer=0, direction=0, unit=1, t0=0, tokens=None,
                      x_signal=x[:, 0].numpy(), nonlinearity=nonlinearity, axes=("x2", "y2"))
    true = rnn_pre_activations(rnn, x)[:, 1]
    bound = READABLE_PRE_ACTIVATION["tanh"]
    shown = set()
    for t, a in enumerate(true):
        if nonlinearity == "relu":
            expected = _num(a) if a > 0 else "≤ 0"
        else:
            expected = f"≥ {bound:g}" if a >= bound + 0.01 else \
                f"≤ −{bound:g}" if a <= -bound - 0.01 else _num(a)
        if abs(abs(a) - bound) < 0.01:  # too near the bound to say which side it is shown
            continue
        assert node(made, "rnn", "pre", t)[1] == expected, (t, a)
        assert made.numbers[t][0].startswith(f"= {nonlinearity}({expected}) = ")
        shown.add(expected[0])
    assert len(shown) >= 2  # both kinds of step were there to check


def test_a_saturated_gate_shows_the_bound_its_pre_activation_passes():
    from core.figures.style import pre_activation_texts

    assert pre_activation_texts(np.array([1.0, 0.0, 0.5, 0.999], np.float32), "σ") == \
        ["≥ 9", "≤ −9", "0.00", "6.91"]
    assert pre_activation_texts(np.array([1.0, -1.0, 0.2]), "tanh") == ["≥ 5", "≤ −5", "0.20"]


def test_the_lstms_cell_equation_adds_up_as_shown_when_the_cell_state_is_large():
    # "c_t = 1.00·27.35 + 1.00·(−0.56) = 26.70": f was 0.9967, and the numbers as shown gave
    # 26.79; each factor now has the decimals its product needs
    from core.figures.diagram import _equation_numbers

    rng = np.random.default_rng(0)
    T = 40
    f, i = rng.uniform(0.9, 1.0, T), rng.uniform(0, 1, T)
    g, c_prev = rng.uniform(-1, 1, T), rng.uniform(-60, 60, T)
    c = f * c_prev + i * g
    o = rng.uniform(0, 1, T)
    v = {"input": i, "forget": f, "cell": g, "output": o, "c_prev": c_prev, "c": c,
         "h": o * np.tanh(c)}
    for row in _equation_numbers("lstm", v, "tanh"):
        line = row[4].replace("−", "-").replace("<b>", "").replace("</b>", "")
        a, b, k, d, shown_c = map(float, re.findall(r"-?\d+\.\d+", line))
        assert abs(a * b + k * d - shown_c) <= 0.011, line
