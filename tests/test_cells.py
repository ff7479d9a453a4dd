"""core.cells: the one cell vocabulary agrees with PyTorch and with what the engine traces."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.cells import CELLS, GRU_CONVENTION, cell_info, cell_of_module
from core.engine import trace


@pytest.mark.parametrize("key", list(CELLS))
def test_each_cell_names_its_pytorch_module_and_row_blocks(key):
    cell = cell_info(key)
    rnn = cell.module(3, 5)
    assert cell_of_module(rnn) == key
    assert rnn.weight_ih_l0.shape == (cell.blocks * 5, 3)  # PyTorch's gate rows, stacked


@pytest.mark.parametrize("key", list(CELLS))
def test_the_engine_traces_exactly_the_registry_gates_in_its_order(key):
    cell = cell_info(key)
    tr = trace(cell.module(2, 4), torch.randn(6, 2))
    assert tuple(tr.gates) == cell.gate_names
    for gate in cell.gates:  # a tanh gate spans (−1, 1), a sigmoid one (0, 1)
        values = tr.gates[gate.name]
        assert values.min() >= (-1 if gate.signed else 0) and values.max() <= 1


def test_pytorch_gate_order_and_the_gru_convention():
    assert CELLS["lstm"].gate_names == ("input", "forget", "cell", "output")
    assert CELLS["gru"].gate_names == ("reset", "update", "new")
    assert CELLS["rnn"].gate_names == () and CELLS["rnn"].nonlinearities == ("tanh", "relu")
    assert CELLS["lstm"].keep_gate == "forget" and CELLS["gru"].keep_gate == "update"
    assert CELLS["gru"].text_equations()[-1] == "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}"
    assert "keeps the old state" in GRU_CONVENTION


def test_equations_fill_in_the_vanilla_rnns_nonlinearity():
    assert CELLS["rnn"].text_equations("relu") == (
        "h_t = relu(W_{ih} x_t + b_{ih} + W_{hh} h_{t−1} + b_{hh})",)
    assert "<sub>" in CELLS["lstm"].equations_for()[0]  # the figures' HTML form


def test_subclasses_are_their_cell_and_anything_else_is_refused():
    class MyLSTM(nn.LSTM):
        pass

    assert cell_of_module(MyLSTM(2, 2)) == "lstm"
    with pytest.raises(ValueError, match="not Linear"):
        cell_of_module(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="rnn, lstm, gru"):
        cell_info("transformer")
    with pytest.raises(KeyError, match="forget"):
        CELLS["gru"].gate("forget")
