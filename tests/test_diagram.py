"""core.figures.diagram: the cell diagram shows what the chosen layer and direction really read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.engine import trace
from core.figures.diagram import DIAGRAMS, cell_panel

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
