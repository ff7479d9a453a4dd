"""trace_batch: many sequences at once, equal to the module's own output on the packed batch and to
`trace` run on each sequence alone, interventions included."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import core.engine.batch
from core.trace import BatchTrace, Intervention, trace, trace_batch

from test_interventions import CELLS, TARGETS  # every cell and what it can clamp
from unroll import make_rnn

VALUE = {"hidden": 0.8, "cell_state": -1.2, "input": 1.0, "forget": 0.0, "cell": -0.5, "output": 0.3,
         "reset": 0.0, "update": 1.0, "new": 0.4}


def module_on_packed_batch(rnn, x, lengths):
    """What the module itself computes on the packed batch: (output (B, T, D*H) with zeros
    beyond each length, h_n, c_n or None)."""
    batch = x if rnn.batch_first else x.transpose(0, 1)
    packed = pack_padded_sequence(batch, torch.as_tensor(lengths), batch_first=rnn.batch_first, enforce_sorted=False)
    with torch.no_grad():
        output, state = rnn(packed)
    output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
    h_n, c_n = state if isinstance(rnn, nn.LSTM) else (state, None)
    return output.numpy(), h_n.numpy(), None if c_n is None else c_n.numpy()


def assert_equals_module(bt: BatchTrace, rnn, x, lengths, atol):
    output, h_n, c_n = module_on_packed_batch(rnn, x, lengths)
    np.testing.assert_allclose(bt.output, output, atol=atol, rtol=0)
    D = 2 if rnn.bidirectional else 1
    rows = np.arange(len(lengths))
    for layer in range(rnn.num_layers):
        # the module's last state of each direction: step length - 1 forward, step 0 in reverse
        np.testing.assert_allclose(bt.hidden[rows, layer, 0, lengths - 1], h_n[layer * D], atol=atol, rtol=0)
        if c_n is not None:
            np.testing.assert_allclose(bt.cell[rows, layer, 0, lengths - 1], c_n[layer * D], atol=atol, rtol=0)
        if D == 2:
            np.testing.assert_allclose(bt.hidden[:, layer, 1, 0], h_n[layer * D + 1], atol=atol, rtol=0)
            if c_n is not None:
                np.testing.assert_allclose(bt.cell[:, layer, 1, 0], c_n[layer * D + 1], atol=atol, rtol=0)


def within(interventions, length):
    """The interventions as they apply to a sequence `length` steps long."""
    kept = []
    for iv in interventions:
        if iv.steps is None:
            kept.append(iv)
        elif any(step < length for step in iv.steps):
            kept.append(Intervention(iv.layer, iv.direction, iv.units, iv.target, [s for s in iv.steps if s < length], iv.value))
    return kept


def assert_equals_per_sequence_trace(bt: BatchTrace, rnn, x, lengths, interventions=(), atol=1e-5):
    for b, length in enumerate(lengths):
        tr = trace(rnn, x[b, :length], interventions=within(interventions, length))
        np.testing.assert_allclose(bt.hidden[b, ..., :length, :], tr.hidden, atol=atol, rtol=0)
        np.testing.assert_allclose(bt.output[b, :length], tr.output, atol=atol, rtol=0)
        if tr.cell is not None:
            np.testing.assert_allclose(bt.cell[b, ..., :length, :], tr.cell, atol=atol, rtol=0)
        assert set(bt.gates) == set(tr.gates)
        for name, values in tr.gates.items():
            np.testing.assert_allclose(bt.gates[name][b, ..., :length, :], values, atol=atol, rtol=0, err_msg=name)
        for array in [bt.hidden, bt.cell, *bt.gates.values()]:
            if array is not None:
                assert np.isnan(array[b, ..., length:, :]).all()
        assert np.all(bt.output[b, length:] == 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(CELLS),
    num_layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    bias=st.booleans(),
    batch_first=st.booleans(),
    batch_size=st.integers(1, 5),
    seq_len=st.integers(1, 20),
    input_size=st.integers(1, 4),
    hidden_size=st.integers(1, 6),
    padded=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_trace_batch_equals_the_module_and_each_sequence_traced_alone(
    cell, num_layers, bidirectional, bias, batch_first, batch_size, seq_len, input_size, hidden_size, padded, seed
):
    rnn = make_rnn(cell, input_size, hidden_size, num_layers, bidirectional, bias, seed, batch_first).double()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, seq_len + 1, batch_size) if padded else np.full(batch_size, seq_len)
    x = torch.randn(batch_size, seq_len, input_size, dtype=torch.float64)
    bt = trace_batch(rnn, x, torch.as_tensor(lengths) if padded else None)
    L, D = num_layers, 2 if bidirectional else 1
    assert bt.hidden.shape == (batch_size, L, D, seq_len, hidden_size)
    assert bt.output.shape == (batch_size, seq_len, D * hidden_size)
    assert all(a.dtype == np.float32 for a in [bt.hidden, bt.output, *bt.gates.values()])
    assert np.array_equal(bt.lengths, lengths)
    assert_equals_module(bt, rnn, x, lengths, atol=1e-5)
    assert_equals_per_sequence_trace(bt, rnn, x, lengths)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cell=st.sampled_from(CELLS), num_layers=st.integers(1, 2), bidirectional=st.booleans(),
       batch_size=st.integers(1, 4), seq_len=st.integers(1, 16), hidden_size=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_interventions_apply_in_trace_batch_exactly_as_in_trace(
    data, cell, num_layers, bidirectional, batch_size, seq_len, hidden_size, seed
):
    rnn = make_rnn(cell, 3, hidden_size, num_layers, bidirectional, seed=seed).double()
    lengths = np.random.default_rng(seed).integers(1, seq_len + 1, batch_size)
    x = torch.randn(batch_size, seq_len, 3, dtype=torch.float64)
    interventions = []
    for _ in range(data.draw(st.integers(1, 3))):
        target = data.draw(st.sampled_from(TARGETS[cell]))
        interventions.append(Intervention(
            layer=data.draw(st.integers(0, num_layers - 1)),
            direction=data.draw(st.integers(0, 1 if bidirectional else 0)),
            units=data.draw(st.lists(st.integers(0, hidden_size - 1), min_size=1, unique=True)),
            target=target,
            steps=data.draw(st.none() | st.lists(st.integers(0, seq_len - 1), min_size=1, max_size=5)),
            value=data.draw(st.sampled_from([0.0, VALUE[target]])),
        ))
    bt = trace_batch(rnn, x, lengths, interventions=interventions)
    assert_equals_per_sequence_trace(bt, rnn, x, lengths, interventions)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_batch_of_many_sequences_equals_the_module(cell):
    """The shipped models' size and dtype (an LSTM runs on oneDNN in the module)."""
    rnn = make_rnn(cell, 32, 64, num_layers=2, bidirectional=True, seed=1)
    lengths = np.random.default_rng(0).integers(5, 41, 64)
    x = torch.randn(64, 40, 32)
    bt = trace_batch(rnn, x, lengths)
    assert_equals_module(bt, rnn, x, lengths, atol=1e-5)
    assert_equals_per_sequence_trace(bt, rnn, x[:3], lengths[:3])


ONEDNN = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")


@ONEDNN
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    bias=st.booleans(),
    batch_size=st.integers(1, 70),
    seq_len=st.integers(1, 60),
    input_size=st.integers(1, 40),
    hidden_size=st.sampled_from([1, 5, 16, 63, 64, 65]),
    padded=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_float32_lstm_gates_and_cells_are_read_from_the_kernel(
    num_layers, bidirectional, bias, batch_size, seq_len, input_size, hidden_size, padded, seed
):
    """A float32 LSTM's gates and cell states come from oneDNN's workspace, laid out per
    sequence of the batch (H = 64 puts 4H on the layout's padding case); the loop never runs."""
    rnn = make_rnn("lstm", input_size, hidden_size, num_layers, bidirectional, bias, seed)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, seq_len + 1, batch_size) if padded else np.full(batch_size, seq_len)
    x = torch.randn(batch_size, seq_len, input_size)
    with mock.patch.object(core.engine.batch, "_loop", side_effect=AssertionError("the loop ran")):
        bt = trace_batch(rnn, x, lengths)
    assert_equals_module(bt, rnn, x, lengths, atol=1e-5)
    assert_equals_per_sequence_trace(bt, rnn, x[:2], lengths[:2])


@ONEDNN
@pytest.mark.parametrize("shift", [16, -1024])
def test_a_misread_kernel_workspace_is_caught_and_the_loop_runs(shift):
    rnn = make_rnn("lstm", 3, 8, num_layers=2, bidirectional=True, seed=2)
    x, lengths = torch.randn(6, 30, 3), np.array([30, 4, 17, 30, 1, 22])
    pages = core.engine.batch._pages
    loop = mock.Mock(wraps=core.engine.batch._loop)
    with mock.patch.object(core.engine.batch, "_pages", lambda floats: pages(floats) + shift), mock.patch.object(
        core.engine.batch, "_loop", loop
    ):
        bt = trace_batch(rnn, x, lengths)
    assert loop.call_count == 4  # every layer and direction
    assert_equals_module(bt, rnn, x, lengths, atol=1e-5)


def test_gates_are_in_range_and_steps_beyond_a_length_are_nan():
    rnn = make_rnn("lstm", 2, 4, seed=2)
    bt = trace_batch(rnn, torch.randn(3, 6, 2), [6, 2, 4])
    valid = bt.valid()
    assert valid.tolist() == [[True] * 6, [True] * 2 + [False] * 4, [True] * 4 + [False] * 2]
    forget = bt.gates["forget"][:, 0, 0]  # (B, T, H)
    assert np.all((forget[valid] > 0) & (forget[valid] < 1)) and np.isnan(forget[~valid]).all()
    assert np.all(np.abs(bt.gates["cell"][:, 0, 0][valid]) < 1)


@pytest.mark.parametrize("cell", CELLS)
def test_padding_values_do_not_matter_and_the_callers_batch_is_left_alone(cell):
    rnn = make_rnn(cell, 2, 4, num_layers=2, bidirectional=True, seed=3)
    x = torch.randn(3, 5, 2)
    noisy = x.clone()
    noisy[1, 3:] = float("nan")
    noisy[2, 4:] = 1e30
    kept = noisy.clone()
    a, b = trace_batch(rnn, x, [5, 3, 4]), trace_batch(rnn, noisy, [5, 3, 4])
    for name in ("hidden", "cell", "output"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name, values in a.gates.items():
        np.testing.assert_array_equal(values, b.gates[name])
    assert torch.equal(noisy.nan_to_num(), kept.nan_to_num()) and torch.equal(noisy.isnan(), kept.isnan())
    # one sequence: its time-major copy would be x itself without care
    alone = noisy[2:3].clone()
    trace_batch(rnn, alone, [4])
    assert torch.equal(alone, noisy[2:3])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_run_that_does_not_carry_nan_beyond_a_length_gets_it_written(cell):
    """The LSTM kernel and a GRU's forward loop are given NaN beyond each length, and their
    results are used as they come only where NaN came out there; a kernel that made numbers of it
    would leave them."""
    rnn = make_rnn(cell, 3, 8, num_layers=2, bidirectional=True, seed=5)
    x, lengths = torch.randn(9, 12, 3), np.array([12, 3, 7, 12, 1, 5, 9, 11, 2])
    time_major = core.engine.batch._LayerInput.time_major

    def zero_padded(self, *args, **kwargs):
        return time_major(self, *args, **kwargs).nan_to_num()  # what a NaN-to-number kernel would see

    with mock.patch.object(core.engine.batch._LayerInput, "time_major", zero_padded):
        bt = trace_batch(rnn, x, lengths)
    assert_equals_module(bt, rnn, x, lengths, atol=1e-5)
    assert_equals_per_sequence_trace(bt, rnn, x, lengths)


def test_an_ablation_over_the_batch_zeroes_the_units_and_moves_the_output():
    rnn = make_rnn("lstm", 3, 8, seed=4)
    x = torch.randn(16, 12, 3)
    plain = trace_batch(rnn, x)
    ablated = trace_batch(rnn, x, interventions=[Intervention(0, 0, [0, 1, 2], "cell_state")])
    assert np.all(ablated.cell[:, 0, 0, :, :3] == 0) and np.all(ablated.hidden[:, 0, 0, :, :3] == 0)
    assert np.abs(ablated.output - plain.output).max() > 1e-3


@pytest.mark.parametrize(
    "x, lengths, message",
    [
        (torch.randn(5, 3), None, r"shape \(B, T, 3\)"),
        (torch.randn(2, 5, 4), None, r"shape \(B, T, 3\)"),
        (torch.randn(0, 5, 3), None, "no sequences"),
        (torch.randn(2, 0, 3), None, "empty"),
        ([[[0.0, 1.0, 2.0]]], None, "torch.Tensor"),
        (torch.randn(2, 5, 3), [5], r"one length per sequence \(2\)"),
        (torch.randn(2, 5, 3), [5, 0], "from 1 to the padded length T = 5"),
        (torch.randn(2, 5, 3), [6, 5], "from 1 to the padded length T = 5"),
        (torch.randn(2, 5, 3), [2.5, 5], "whole numbers"),
        (torch.full((2, 5, 3), float("nan")), None, "NaN"),
        (torch.randn(2, 5, 3).index_put_((torch.tensor(1), torch.tensor(2)), torch.tensor(float("inf"))), [5, 3],
         "NaN or infinite values within the sequences' lengths"),
    ],
)
def test_bad_batches_get_a_clear_message(x, lengths, message):
    with pytest.raises(ValueError, match=message):
        trace_batch(make_rnn("lstm", 3, 4), x, lengths)


def test_interventions_are_checked_against_the_module():
    with pytest.raises(ValueError, match=r"Step 7 is beyond the sequence: it has 5 steps"):
        trace_batch(make_rnn("gru", 3, 4), torch.randn(2, 5, 3), interventions=[Intervention(0, 0, [1], "reset", [7])])
