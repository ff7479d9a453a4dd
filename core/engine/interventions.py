"""Interventions: units of one quantity set to a value as soon as it is computed, and the network
goes on from there.

    from core.trace import Intervention, trace
    ablate = Intervention(layer=0, direction=0, units=(3, 17), target="cell_state")   # c := 0
    hold = Intervention(0, 0, [5], "forget", steps=range(10, 20), value=1.0)          # f := 1
    tr = trace(rnn, x, interventions=[ablate, hold])

A clamped gate enters that step's update; a clamped h or c is what the next step and the layer
above read. Gradients are of the intervened network: the gradient reported for a clamped h_t or
c_t is the one with respect to the value the network carries on (the clamped value), and nothing
passes back through the clamped units at those steps to what computed them.

How it stays fast: the clamped network still runs in PyTorch's fused kernels, with weights edited
so that the kernel itself computes the clamped network, one kernel call per stretch of steps
whose clamps are the same (`_segments`):
- a gate clamped to v: its rows of W_ih and W_hh are zero and its bias is the pre-activation that
  gives v (logit(v) for a sigmoid, atanh(v) for tanh; past +-BIG for 0 and 1, where float32 and
  float64 give exactly 0 and 1);
- c clamped to v (LSTM): f := 1 and i := 0 exactly keep c at the v the stretch starts from;
- h_{t-1} clamped to v where step t reads it: its columns of W_hh are zero and W_hh[:, U] v joins
  the recurrent bias (for a GRU inside the reset gate's product, as b_hn is); the clamped h_t
  itself is written over the kernel's output. A GRU's direct z * h_{t-1} path reads the kernel's
  own h, so for a GRU a stretch also keeps the same clamps on h_t.
Between stretches the states are handed on with their clamps applied. Clamps at every step are
two kernel calls per layer and direction (step 0 reads no clamped h), clamps at k scattered steps
about 2k + 1; layers and directions without interventions run exactly as without any.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from core.cells import CELLS
from core.engine.scans import forward_scan

#: A pre-activation past which sigmoid and tanh are exactly 0, 1 or -1 in float32 and float64
#: (and their derivatives exactly 0).
BIG = 1e4

#: What can be clamped, per cell type: "hidden", the LSTM's "cell_state", and every gate by
#: PyTorch's name.
TARGETS: dict[str, tuple[str, ...]] = {
    key: ("hidden",) + (("cell_state",) if key == "lstm" else ()) + cell.gate_names for key, cell in CELLS.items()
}
_GATES = {gate.name: gate for cell in CELLS.values() for gate in cell.gates}
_ALL_TARGETS = ("hidden", "cell_state") + tuple(_GATES)


@dataclass(frozen=True)
class Intervention:
    """Set `units` of `target` in (`layer`, `direction`) to `value` at `steps` (None: every step).

    target: "hidden" (h), "cell_state" (an LSTM's c) or a gate as the trace names it (LSTM
    "input", "forget", "cell", "output"; GRU "reset", "update", "new"). Steps are input
    positions t (a reverse direction's step t reads input t, as in the trace). Units and steps are
    kept sorted and without repeats, so equal interventions compare and hash equal.
    """

    layer: int
    direction: int
    units: tuple[int, ...]
    target: str
    steps: tuple[int, ...] | None = None
    value: float = 0.0

    def __post_init__(self):
        if self.target not in _ALL_TARGETS:
            raise ValueError(
                f"Unknown intervention target {self.target!r}: choose 'hidden', 'cell_state' (LSTM) or a gate "
                "(LSTM: input, forget, cell, output; GRU: reset, update, new)."
            )
        _set(self, "layer", _index(self.layer, "layer", "layers are numbered from 0"))
        _set(self, "direction", _index(self.direction, "direction", "0 is forward, 1 is reverse"))
        if self.direction > 1:
            raise ValueError(f"direction must be 0 (forward) or 1 (reverse), not {self.direction}.")
        _set(self, "units", _indices(self.units, "units", "unit"))
        if self.steps is not None:
            _set(self, "steps", _indices(self.steps, "steps", "step", "give steps=None for every step"))
        value = self.value
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"An intervention's value must be a finite number, not {value!r}.")
        value = float(value)
        gate = _GATES.get(self.target)
        if gate is not None:
            low = -1.0 if gate.signed else 0.0
            if not low <= value <= 1.0:
                kind = "tanh, between -1 and 1" if gate.signed else "sigmoid, between 0 and 1"
                raise ValueError(f"The {gate.label} is a {kind}: it cannot be set to {value:g}.")
        _set(self, "value", value)

    def describe(self) -> str:
        """One line in the user's terms: "forget gate f of units 3, 7 (layer 0, forward) := 0 at steps 10-19"."""
        what = {"hidden": "h", "cell_state": "cell state c"}.get(self.target) or _GATES[self.target].label
        units = ", ".join(map(str, self.units))
        when = "every step" if self.steps is None else f"steps {_spans(self.steps)}"
        where = f"layer {self.layer}, {'reverse' if self.direction else 'forward'}"
        return f"{what} of unit{'s' if len(self.units) > 1 else ''} {units} ({where}) := {self.value:g} at {when}"


def _set(instance, name, value):
    object.__setattr__(instance, name, value)  # a frozen dataclass normalises its own fields


def _index(value, name, hint) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a whole number from 0 ({hint}), not {value!r}.")
    return int(value)


def _indices(values, name, singular, empty_hint="") -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list, tuple or range of whole numbers, not {values!r}.")
    values = list(values)
    if not values:
        raise ValueError(f"An intervention needs at least one {singular}" + (f" ({empty_hint})." if empty_hint else "."))
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be whole numbers from 0; got {value!r}.")
    return tuple(sorted({int(value) for value in values}))


def _spans(steps: tuple[int, ...]) -> str:
    """(1, 2, 3, 7) -> "1-3, 7"."""
    spans = []
    start = previous = steps[0]
    for step in steps[1:] + (None,):
        if step is None or step != previous + 1:
            spans.append(str(start) if start == previous else f"{start}-{previous}")
            start = step
        previous = step
    return ", ".join(spans)


def checked_interventions(cell_type: str, rnn, interventions, seq_len: int) -> tuple[Intervention, ...]:
    """The interventions as a tuple, each checked against this module and sequence length."""
    if isinstance(interventions, Intervention):
        interventions = (interventions,)
    try:
        interventions = tuple(interventions)
    except TypeError:
        raise ValueError("interventions must be a list or tuple of Intervention objects.") from None
    name = CELLS[cell_type].display_name
    num_layers, num_dirs, hidden_size = rnn.num_layers, 2 if rnn.bidirectional else 1, rnn.hidden_size
    for intervention in interventions:
        if not isinstance(intervention, Intervention):
            raise ValueError(f"interventions must be Intervention objects, not {type(intervention).__name__}.")
        target = intervention.target
        if target not in TARGETS[cell_type]:
            if cell_type == "rnn":
                raise ValueError(f"A vanilla RNN has no gates or cell state: it cannot clamp {target!r}, only 'hidden'.")
            raise ValueError(
                f"A {name} has no {target!r} to clamp: its targets are {', '.join(TARGETS[cell_type])}."
            )
        if intervention.layer >= num_layers:
            raise ValueError(
                f"Layer {intervention.layer} does not exist: this {name} has {num_layers} "
                f"layer{'s' if num_layers > 1 else ''} (0 to {num_layers - 1})."
            )
        if intervention.direction >= num_dirs:
            raise ValueError(f"Direction 1 (reverse) does not exist: this {name} is not bidirectional.")
        if intervention.units[-1] >= hidden_size:
            raise ValueError(
                f"Unit {intervention.units[-1]} does not exist: layer {intervention.layer} has {hidden_size} "
                f"units (0 to {hidden_size - 1})."
            )
        if intervention.steps is not None and intervention.steps[-1] >= seq_len:
            raise ValueError(
                f"Step {intervention.steps[-1]} is beyond the sequence: it has {seq_len} "
                f"step{'s' if seq_len > 1 else ''} (0 to {seq_len - 1})."
            )
    return interventions


@dataclass
class Clamps:
    """One layer and direction's clamps, dense, in input order: target -> (T, H) mask and values.

    Where interventions overlap, the later one in the list wins, as if applied in turn.
    """

    masks: dict[str, np.ndarray]  # target -> (T, H) bool
    values: dict[str, np.ndarray]  # target -> (T, H) float64, 0 where not masked

    def in_processing_order(self, length: int, reverse: bool) -> Clamps:
        """The clamps of a sequence `length` steps long, in the order its direction runs them."""
        order = slice(length - 1, None, -1) if reverse else slice(0, length)
        return Clamps(
            {target: mask[order].copy() for target, mask in self.masks.items()},
            {target: values[order].copy() for target, values in self.values.items()},
        )


def clamps_by_run(
    interventions: tuple[Intervention, ...], seq_len: int, hidden_size: int
) -> dict[tuple[int, int], Clamps]:
    """(layer, direction) -> its Clamps, in input order, for the runs that have any."""
    runs: dict[tuple[int, int], Clamps] = {}
    for intervention in interventions:
        clamps = runs.setdefault((intervention.layer, intervention.direction), Clamps({}, {}))
        if intervention.target not in clamps.masks:
            clamps.masks[intervention.target] = np.zeros((seq_len, hidden_size), bool)
            clamps.values[intervention.target] = np.zeros((seq_len, hidden_size))
        steps = slice(None) if intervention.steps is None else np.asarray(intervention.steps)
        where = np.ix_(np.arange(seq_len)[steps], np.asarray(intervention.units))
        clamps.masks[intervention.target][where] = True
        clamps.values[intervention.target][where] = intervention.value
    return runs


# ---------------------------------------------------------------------------------------------
# The clamped forward: one layer and direction in the fused kernel, stretch by stretch
# ---------------------------------------------------------------------------------------------


def clamped_forward(
    cell_type: str,
    nonlinearity: str,
    inputs: torch.Tensor,
    weights,
    clamps: Clamps,
    probe: torch.Tensor | None = None,
    probe_block: torch.Tensor | None = None,
) -> torch.Tensor:
    """One layer and direction of the clamped network: (T, B, in) inputs in processing order and
    clamps in processing order -> the (T, B, H) output the network carries on (clamps applied).

    `weights` is the run's core.engine.tracing.LayerWeights. With `probe` (T, K) and
    `probe_block` (gate rows, K), the probe enters each step's pre-activations as in
    core.engine.tracing.trace, with the rows of clamped gates left out, so d/d probe_t is the
    recurrent gradient of the clamped h_{t-1} in the clamped network. Differentiable wherever
    its inputs are.
    """
    seq_len, batch = inputs.shape[0], inputs.shape[1]
    hidden_size = weights.w_hh.shape[1]
    h_clamped = "hidden" in clamps.masks
    state = inputs.new_zeros(1, batch, hidden_size)
    cell_state = state if cell_type == "lstm" else None
    outputs = []
    edited: dict[bytes, tuple] = {}
    signature = _signature(cell_type, clamps)
    for start, stop in _segments(signature):
        key = signature[start].tobytes()
        if key not in edited:
            edited[key] = _edited_weights(cell_type, weights, clamps, start, probe_block)
        params, has_bias, block = edited[key]
        run_input = inputs[start:stop]
        if probe is not None:
            widened = probe[start:stop].unsqueeze(1).expand(-1, batch, -1)
            run_input = torch.cat([run_input, widened], dim=2)
            params = [torch.cat([params[0], block], dim=1)] + params[1:]
        if cell_state is not None and "cell_state" in clamps.masks and clamps.masks["cell_state"][start].any():
            cell_state = _clamped(cell_state, clamps, "cell_state", start)
        output, state, cell_state = _kernel(cell_type, nonlinearity, run_input, params, has_bias, state, cell_state)
        if h_clamped and clamps.masks["hidden"][start:stop].any():
            output = _clamped(output, clamps, "hidden", slice(start, stop))
            state = output[-1:]
        outputs.append(output)
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _signature(cell_type: str, clamps: Clamps) -> np.ndarray:
    """(T, F): one row per step of everything that decides how the kernel runs that step; steps
    with equal rows run in one kernel call."""
    columns = []
    for target in ("cell_state",) + CELLS[cell_type].gate_names:
        if target in clamps.masks:
            columns += [clamps.masks[target], clamps.values[target]]
    if "hidden" in clamps.masks:
        mask, values = clamps.masks["hidden"], clamps.values["hidden"]
        # step t reads h_{t-1}; step 0 reads the zero start, never clamped
        columns += [np.concatenate([np.zeros_like(mask[:1]), mask[:-1]]), np.concatenate([np.zeros_like(values[:1]), values[:-1]])]
        if cell_type == "gru":  # a GRU's own z * h path reads the kernel's h: same clamps on h_t too
            columns += [mask, values]
    return np.concatenate([np.asarray(column, np.float64) for column in columns], axis=1)


def _segments(signature: np.ndarray) -> list[tuple[int, int]]:
    changes = np.flatnonzero((signature[1:] != signature[:-1]).any(axis=1)) + 1
    bounds = [0, *changes.tolist(), len(signature)]
    return list(zip(bounds, bounds[1:]))


def _edited_weights(cell_type: str, weights, clamps: Clamps, step: int, probe_block: torch.Tensor | None):
    """The kernel's parameters for the stretch that starts at `step` (see the module docstring),
    whether they have biases, and the probe block with the clamped gates' rows zeroed."""
    hidden_size = weights.w_hh.shape[1]
    fixed_rows, fixed_pre = [], []
    for k, gate in enumerate(CELLS[cell_type].gate_names):
        if gate in clamps.masks and clamps.masks[gate][step].any():
            units = np.flatnonzero(clamps.masks[gate][step])
            fixed_rows.append(k * hidden_size + units)
            fixed_pre.append(_pre_activation(clamps.values[gate][step, units], _GATES[gate].signed))
    if "cell_state" in clamps.masks and clamps.masks["cell_state"][step].any():
        units = np.flatnonzero(clamps.masks["cell_state"][step])
        fixed_rows += [units, hidden_size + units]  # i := 0 and f := 1 keep c where it starts
        fixed_pre += [np.full(len(units), -BIG), np.full(len(units), BIG)]
    reads_clamped = step > 0 and "hidden" in clamps.masks and clamps.masks["hidden"][step - 1].any()
    if not fixed_rows and not reads_clamped:
        params = [weights.w_ih, weights.w_hh]
        if weights.b_ih is not None:
            params += [weights.b_ih, weights.b_hh]
        return params, weights.b_ih is not None, probe_block

    w_ih, w_hh = weights.w_ih.clone(), weights.w_hh.clone()
    b_ih = weights.b_ih.clone() if weights.b_ih is not None else w_ih.new_zeros(w_ih.shape[0])
    b_hh = weights.b_hh.clone() if weights.b_hh is not None else w_ih.new_zeros(w_ih.shape[0])
    if reads_clamped:
        units = torch.from_numpy(np.flatnonzero(clamps.masks["hidden"][step - 1]))
        values = torch.from_numpy(clamps.values["hidden"][step - 1][units.numpy()]).to(w_hh.dtype)
        b_hh += w_hh[:, units] @ values
        w_hh[:, units] = 0.0
    block = probe_block
    if fixed_rows:
        rows = torch.from_numpy(np.concatenate(fixed_rows))
        w_ih[rows] = 0.0
        w_hh[rows] = 0.0
        b_ih[rows] = torch.from_numpy(np.concatenate(fixed_pre)).to(b_ih.dtype)
        b_hh[rows] = 0.0
        if probe_block is not None:
            block = probe_block.clone()
            block[rows] = 0.0
    return [w_ih, w_hh, b_ih, b_hh], True, block


def _pre_activation(values: np.ndarray, signed: bool) -> np.ndarray:
    """The pre-activation whose sigmoid (tanh where `signed`) is `values`; +-BIG at the ends."""
    with np.errstate(divide="ignore"):
        pre = np.arctanh(values) if signed else np.log(values) - np.log1p(-values)
    return np.clip(pre, -BIG, BIG)


def _clamped(tensor: torch.Tensor, clamps: Clamps, target: str, steps) -> torch.Tensor:
    """`tensor` (T or 1, B, H) with the clamps of `target` at `steps` written in; no gradient
    passes through the clamped entries."""
    mask = torch.from_numpy(clamps.masks[target][steps]).reshape(-1, 1, tensor.shape[-1])
    values = torch.from_numpy(clamps.values[target][steps]).to(tensor.dtype).reshape(-1, 1, tensor.shape[-1])
    return torch.where(mask.to(tensor.device), values.to(tensor.device), tensor)


def _kernel(cell_type, nonlinearity, inputs, params, has_bias, state, cell_state):
    """PyTorch's fused kernel for one layer and direction from (state, cell_state):
    (output, last h as (1, B, H), last c or None)."""
    args = (params, has_bias, 1, 0.0, False, False, False)
    if cell_type == "lstm":
        output, last, last_cell = torch.lstm(inputs, (state, cell_state), *args)
        return output, last, last_cell
    if cell_type == "gru":
        output, last = torch.gru(inputs, state, *args)
    elif nonlinearity == "relu":
        output, last = torch.rnn_relu(inputs, state, *args)
    else:
        output, last = torch.rnn_tanh(inputs, state, *args)
    return output, last, None


# ---------------------------------------------------------------------------------------------
# Gates and cell state of the clamped network, for all steps at once
# ---------------------------------------------------------------------------------------------


def clamped_gates_and_cell(
    cell_type: str, inputs: torch.Tensor, hidden: torch.Tensor, weights, clamps: Clamps | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Every gate (gates, T, B, H) and an LSTM's cell state (T, B, H), as float arrays, from the
    (T, B, in) inputs and the (T, B, H) hidden states the network carried (clamps applied), in
    processing order: two matmuls, then the clamps written in as the network wrote them (a GRU's
    clamped reset gate enters its candidate), and c as a scan that restarts where c is clamped.
    """
    seq_len, batch, hidden_size = hidden.shape
    w = weights
    with torch.no_grad():
        flat_inputs = inputs.reshape(seq_len * batch, -1)
        if cell_type == "lstm":
            bias = None if w.b_ih is None else w.b_ih + w.b_hh
            pre = _affine(flat_inputs, w.w_ih, bias).reshape(seq_len, batch, 4 * hidden_size)
            if seq_len > 1:
                pre[1:].reshape(-1, 4 * hidden_size).addmm_(hidden[:-1].reshape(-1, hidden_size), w.w_hh.T)
            gates = pre.reshape(seq_len, batch, 4, hidden_size).permute(2, 0, 1, 3)
            gates[:2].sigmoid_()
            gates[2].tanh_()
            gates[3].sigmoid_()
            gates = gates.numpy() if gates.device.type == "cpu" else gates.cpu().numpy()
            gates = np.ascontiguousarray(gates)
            if clamps is not None:
                for k, name in enumerate(CELLS["lstm"].gate_names):
                    _write_clamps(gates[k], clamps, name)
            source = gates[0] * gates[2]
            decay = gates[1]
            if clamps is not None and "cell_state" in clamps.masks:
                mask = clamps.masks["cell_state"][:, None, :]
                source = np.where(mask, clamps.values["cell_state"][:, None, :], source).astype(source.dtype)
                decay = np.where(mask, 0.0, decay).astype(decay.dtype)
            shape = source.shape
            cell = forward_scan(decay=decay.reshape(seq_len, -1), source=source.reshape(seq_len, -1)).reshape(shape)
            return gates, cell
        input_part = _affine(flat_inputs, w.w_ih, w.b_ih).reshape(seq_len, batch, 3 * hidden_size)
        hidden_part = (
            w.b_hh.expand_as(input_part).clone() if w.b_hh is not None else torch.zeros_like(input_part)
        )
        if seq_len > 1:
            hidden_part[1:].reshape(-1, 3 * hidden_size).addmm_(hidden[:-1].reshape(-1, hidden_size), w.w_hh.T)
        i_r, i_z, i_n = input_part.chunk(3, dim=2)
        h_r, h_z, h_n = hidden_part.chunk(3, dim=2)
        reset = torch.sigmoid(i_r + h_r).numpy()
        update = torch.sigmoid(i_z + h_z).numpy()
        if clamps is not None:
            _write_clamps(reset, clamps, "reset")
            _write_clamps(update, clamps, "update")
        new = torch.tanh(i_n + torch.from_numpy(reset) * h_n).numpy()
        if clamps is not None:
            _write_clamps(new, clamps, "new")
        return np.stack([reset, update, new]), None


def _write_clamps(array: np.ndarray, clamps: Clamps, target: str) -> None:
    """(T, B, H) array: the clamped entries of `target` set to their values, in place."""
    if target in clamps.masks:
        mask = np.broadcast_to(clamps.masks[target][:, None, :], array.shape)
        values = np.broadcast_to(clamps.values[target][:, None, :], array.shape)
        array[mask] = values[mask]


def _affine(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return inputs @ weight.T if bias is None else torch.addmm(bias, inputs, weight.T)
