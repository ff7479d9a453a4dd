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

How it stays fast: the clamped network still runs in PyTorch's fused kernels (`clamped_forward`),
which then compute the clamped network themselves:
- as extra, time-varying inputs (`_as_inputs`), like the engine's probe: a sigmoid gate set to 0
  or 1 or a tanh gate set to -1 or 1 is its pre-activation pushed past -BIG or +BIG (exactly 0,
  1 or -1 in float32 and float64, derivative exactly 0); an LSTM's c set to 0 is i := 0 and
  f := 0; an LSTM's h_s set to v is o_s pushed to 0 (h_s exactly 0, passing nothing back) with
  W_hh[:, u] v added at step s + 1, where the clamped value is read. These cost no extra kernel
  call at any steps;
- otherwise with edited weights, one kernel call per stretch of steps whose clamps agree
  (`_segments`): a gate clamped to v has zero rows in W_ih and W_hh and the bias that gives v;
  an LSTM's c clamped to v is f := 1 and i := 0 from a state handed over with c = v; an h_{t-1}
  clamped to v within a stretch is read through zero columns of W_hh and W_hh[:, U] v in the
  bias (for a GRU inside the reset gate's product, as b_hn is), and written over the kernel's
  output. A GRU's direct z * h_{t-1} path reads the kernel's own h, so its stretches also keep
  the same clamps on h_t. Between stretches the states are handed on with their clamps applied;
  stretches of one or two steps run in PyTorch's cell ops, cheaper than a kernel call there.
So clamps at every step cost at most two calls per layer and direction (step 0 reads no clamped
h), clamps of a value that is not an end of its range at k scattered steps about k + 1; layers
and directions without interventions run exactly as without any.

An LSTM that needs more than one call (or has c clamped to a value other than 0) does not use
the kernels' backward: a fused LSTM backward costs a fixed half millisecond or so per call, which
at k scattered clamps is most of the trace. Its kernels compute values only, without a graph
(c := v is then f := 1 and i := 0 pushed, from a state handed over with c = v where a run of
such steps starts), and `_ClampedLSTM` runs the LSTM's backward recurrence through time itself,
in numpy, once over all steps, from the gates and cell state recomputed for all steps at once;
the trace's own request for those gates is then answered from that computation.
"""

from __future__ import annotations

import math
import numbers
import threading
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
    core.engine.tracing.trace, with the rows of clamped gates left out, so d/d probe is the
    recurrent gradient of the clamped h_{t-1} in the clamped network. Differentiable in the
    inputs and the probe (the weights are the module's, detached).

    Where the kernel would run in more than one stretch, an LSTM's backward is its own
    (`_ClampedLSTM`): a fused kernel's backward costs a fixed half millisecond or so per call,
    several times the steps between scattered clamps.
    """
    wants_gradient = torch.is_grad_enabled() and (
        inputs.requires_grad or (probe is not None and probe.requires_grad)
    )
    if cell_type == "lstm" and wants_gradient and inputs.device.type == "cpu":
        plan = _Plan(cell_type, clamps, weights.w_hh, values_only=True)
        if plan.cell_clamps is not None or len(plan.segments) > 1:
            return _ClampedLSTM.apply(inputs, probe, plan, weights, clamps, probe_block)
        # otherwise the kernel's own plan: one call, and its backward is the clamped network's
    else:
        plan = _Plan(cell_type, clamps, weights.w_hh)
    return _run_stretches(plan, cell_type, nonlinearity, inputs, weights, probe, probe_block)


class _Plan:
    """How the kernel runs a clamped layer and direction: the clamps it takes as inputs
    (`_as_inputs`) and the stretches (`_segments`) it runs the rest in, each from the state the
    one before handed over.

    `values_only` (an LSTM, for `_ClampedLSTM`, whose backward is not the kernel's): gate clamps
    on i, f and g are left out where c is clamped (they change nothing there), so that c := 0 is
    always pushed as i := 0 and f := 0; and c clamped to any other v is f := 1 and i := 0 pushed
    (c_t = c_{t-1}) from a state handed over with c = v at the first step of each run of steps
    clamped alike (`cell_clamps`): a stretch more per run, and no edited weights or single steps
    in the cell ops. The kernel's derivatives are then those of other clamps than the network's,
    which is why its backward is not used. Without such c clamps the plan is the kernel's own.
    """

    def __init__(self, cell_type: str, clamps: Clamps, w_hh: torch.Tensor, values_only: bool = False):
        seq_len = len(next(iter(clamps.masks.values())))
        self.cell_clamps = None
        cell_mask = clamps.masks.get("cell_state") if values_only else None
        if cell_mask is not None:
            cell_values = clamps.values["cell_state"]
            others = {target: mask & ~cell_mask if target in ("input", "forget", "cell") else mask
                      for target, mask in clamps.masks.items()}
            held = cell_mask & (cell_values != 0.0)
            if held.any():
                self.cell_clamps = Clamps({"cell_state": held}, {"cell_state": np.where(held, cell_values, 0.0)})
                others["cell_state"] = cell_mask & ~held
            clamps = Clamps(
                {target: mask for target, mask in others.items() if mask.any()},
                {target: clamps.values[target] for target, mask in others.items() if mask.any()},
            )
        if clamps.masks:
            self.control, self.control_block, self.rest, self.pushed_h = _as_inputs(cell_type, clamps, w_hh)
        else:
            self.control, self.control_block, self.rest, self.pushed_h = None, None, clamps, None
        self.steps = _StepClamps(cell_type, self.rest, seq_len)
        self.segments = _segments(cell_type, self.steps)
        if self.cell_clamps is not None:
            self._push_cell_clamps(w_hh)

    def _push_cell_clamps(self, w_hh: torch.Tensor) -> None:
        """c := v as i := 0 and f := 1, pushed; the stretches cut where a run of c clamps starts."""
        mask, values = self.cell_clamps.masks["cell_state"], self.cell_clamps.values["cell_state"]
        seq_len, hidden_size = mask.shape
        units = np.flatnonzero(mask.any(axis=0))
        pushed = mask[:, units].astype(np.float64)
        columns = np.concatenate([-pushed, pushed], axis=1)  # i pushed to 0, f to 1
        block = w_hh.new_zeros(w_hh.shape[0], 2 * len(units))
        rows = torch.from_numpy(np.concatenate([units, hidden_size + units]))
        block[rows, torch.arange(2 * len(units))] = BIG
        if self.control is None:
            self.control, self.control_block = torch.from_numpy(columns), block
        else:
            self.control = torch.cat([self.control, torch.from_numpy(columns)], dim=1)
            self.control_block = torch.cat([self.control_block, block], dim=1)
        continued = np.zeros_like(mask)
        continued[1:] = mask[:-1] & (values[:-1] == values[1:])
        starting = mask & ~continued
        starts = set(np.flatnonzero(starting.any(axis=1)).tolist())
        # what each run's first step hands over: (units, values), written into c as it comes
        self.handed_cells = {
            step: (torch.from_numpy(np.flatnonzero(starting[step])), torch.from_numpy(values[step, starting[step]]))
            for step in starts
        }
        segments = []
        for start, stop, read in self.segments:
            for cut in sorted(step for step in starts if start < step < stop):
                segments.append((start, cut, read))
                start = cut
            segments.append((start, stop, read))
        self.segments = segments


def _run_stretches(plan: _Plan, cell_type, nonlinearity, inputs, weights, probe, probe_block) -> torch.Tensor:
    """`clamped_forward` in the fused kernels, stretch by stretch, differentiable through them."""
    batch = inputs.shape[1]
    hidden_size = weights.w_hh.shape[1]
    rest, pushed_h = plan.rest, plan.pushed_h
    # extra input columns and their weights: the probe, then the control
    extra = [probe] if probe is not None else []
    extra_block = [probe_block] if probe is not None else []
    if plan.control is not None:
        extra.append(plan.control.to(inputs.dtype))
        extra_block.append(plan.control_block.to(inputs.dtype))
    extra = torch.cat(extra, dim=1) if extra else None
    extra_block = torch.cat(extra_block, dim=1) if extra_block else None

    if extra is not None:  # the extra columns, every step at once
        inputs = torch.cat([inputs, extra.unsqueeze(1).expand(-1, batch, -1)], dim=2)
    state = inputs.new_zeros(1, batch, hidden_size)
    cell_state = inputs.new_zeros(1, batch, hidden_size) if cell_type == "lstm" else None
    outputs = []
    edited: dict[bytes, tuple] = {}
    steps = plan.steps
    for start, stop, read in plan.segments:
        key = steps.key(start, read)
        if key not in edited:
            params, has_bias, block = _edited_weights(cell_type, weights, rest, start, read, extra_block)
            if extra is not None:
                params = [torch.cat([params[0], block], dim=1)] + params[1:]
            edited[key] = params, has_bias
        params, has_bias = edited[key]
        run_input = inputs[start:stop]
        if cell_state is not None and "cell_state" in rest.masks and rest.masks["cell_state"][start].any():
            cell_state = _clamped(cell_state, rest, "cell_state", start)
        if plan.cell_clamps is not None and start in plan.handed_cells:  # values only: no graph to keep
            units, values = plan.handed_cells[start]
            cell_state[:, :, units] = values.to(cell_state.dtype)
        run = _kernel if stop - start > _STEPS_BY_CELL else _cell_steps
        output, state, cell_state = run(cell_type, nonlinearity, run_input, params, has_bias, state, cell_state)
        if "hidden" in rest.masks and rest.masks["hidden"][start:stop].any():
            output = _clamped(output, rest, "hidden", slice(start, stop))
            state = output[-1:]  # handed over clamped; an h clamped by `_as_inputs` is read as an input instead
        if pushed_h is not None and pushed_h.masks["hidden"][start:stop].any():
            output = _clamped(output, pushed_h, "hidden", slice(start, stop))
        outputs.append(output)
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


class _ClampedLSTM(torch.autograd.Function):
    """A clamped LSTM layer and direction: forward in the fused kernels, stretch by stretch,
    without a graph (`_run_stretches` under no_grad: no kernel keeps a workspace); backward by
    the LSTM's own recurrence through time (`_lstm_pre_activation_gradients`), one pass over
    the steps whatever the number of stretches, from the gates and cell state recomputed for
    all steps at once (`clamped_gates_and_cell`)."""

    @staticmethod
    def forward(ctx, inputs, probe, plan, weights, clamps, probe_block):
        output = _run_stretches(plan, "lstm", "tanh", inputs, weights, None, None)
        ctx.save_for_backward(inputs, output)
        ctx.weights, ctx.clamps, ctx.probe_block = weights, clamps, probe_block
        return output

    @staticmethod
    def backward(ctx, grad_output):
        inputs, output = ctx.saved_tensors
        weights, clamps = ctx.weights, ctx.clamps
        gates, cell = _gates_and_cell("lstm", inputs, output, weights, clamps)
        # the trace reads them next (core.engine.tracing._inside_clamped), with these arguments
        _GATES_COMPUTED.put(("lstm", inputs.detach(), output.detach(), weights, clamps), (gates, cell))
        pre = torch.from_numpy(
            _lstm_pre_activation_gradients(gates, cell, clamps, grad_output.numpy(), weights.w_hh.numpy())
        )
        # the products in torch: numpy's BLAS runs a product this size on threads of its own,
        # which on a busy machine costs a hundred times the product
        grad_inputs = grad_probe = None
        if ctx.needs_input_grad[0]:
            grad_inputs = torch.mm(pre.reshape(-1, pre.shape[2]), weights.w_ih).reshape(inputs.shape)
        if ctx.needs_input_grad[1]:
            grad_probe = torch.mm(pre.sum(dim=1), ctx.probe_block)
        return grad_inputs, grad_probe, None, None, None, None


def _lstm_pre_activation_gradients(gates: np.ndarray, cell: np.ndarray, clamps: Clamps, grad_hidden: np.ndarray,
                                   w_hh: np.ndarray) -> np.ndarray:
    """d objective / d (pre-activations of i, f, g, o), (T, B, 4H), of a clamped LSTM run from
    its gates (4, T, B, H) and cell state (T, B, H) as the network computed them (clamps written
    in) and d objective / d h_t from outside the recurrence (the layer above, the objective),
    (T, B, H), all in processing order. The backward recurrence through time,
        dh_t = grad_hidden_t + W_hh^T dpre_{t+1},   dc_t = dh_t o_t (1 - tanh^2 c_t) + f_{t+1} dc_{t+1},
    with dpre_t from dh_t and dc_t, where a clamped entry passes nothing back to what computed
    it: a clamped h_t to o_t and c_t, a clamped c_t to i_t, f_t, g_t and c_{t-1}, a clamped gate
    to its pre-activation. Everything that does not depend on the gradient is computed for all
    steps at once; the loop is six numpy calls a step (about 5 us).
    """
    input_gate, forget, cell_gate, output_gate = gates
    seq_len, batch, hidden_size = cell.shape

    def kept(target: str) -> np.ndarray | None:  # (T, 1, H): 1 where not clamped
        mask = clamps.masks.get(target)
        return None if mask is None or not mask.any() else (~mask)[:, None, :].astype(cell.dtype)

    tanh_cell = np.tanh(cell)
    to_cell = output_gate * (1.0 - tanh_cell * tanh_cell)  # d c_t / d h_t, through h_t = o_t tanh(c_t)
    to_output = tanh_cell * output_gate * (1.0 - output_gate)  # d o_pre / d h_t
    previous = np.zeros_like(cell)
    previous[1:] = cell[:-1]
    from_cell = np.empty((seq_len, batch, 3, hidden_size), cell.dtype)  # d (i, f, g)_pre / d c_t
    from_cell[:, :, 0] = cell_gate * input_gate * (1.0 - input_gate)
    from_cell[:, :, 1] = previous * forget * (1.0 - forget)
    from_cell[:, :, 2] = input_gate * (1.0 - cell_gate * cell_gate)
    carry = forget.copy()  # d c_t / d c_{t-1}
    for k, name in enumerate(("input", "forget", "cell")):
        if (free := kept(name)) is not None:
            from_cell[:, :, k] *= free
    if (free := kept("output")) is not None:
        to_output *= free
    if (free := kept("hidden")) is not None:
        to_cell *= free
        to_output *= free
    if (free := kept("cell_state")) is not None:
        from_cell *= free[:, :, None, :]
        carry *= free

    # each step's row holds its dpre and, after it, the outside gradient of the step before, so
    # that one product with [W_hh; I] gives dh_{t-1} = W_hh^T dpre_t + grad_hidden_{t-1}
    rows = np.empty((seq_len + 1, batch, 5, hidden_size), cell.dtype)
    rows[1:, :, 4] = grad_hidden
    rows[-1, :, :4] = 0.0
    lifted = np.concatenate([w_hh, np.eye(hidden_size, dtype=w_hh.dtype)])  # (5H, H)
    dh = np.empty((batch, hidden_size), cell.dtype)
    dc = np.zeros((batch, hidden_size), cell.dtype)
    each_gate = dc[:, None, :]  # dc against i, f and g at once
    carried = np.empty((batch, hidden_size), cell.dtype)
    # per-step views made once: the loop is all numpy dispatch, a view per call is a fifth of it
    whole_rows = list(rows.reshape(seq_len + 1, batch, 5 * hidden_size))
    gate_rows, output_rows = list(rows[:, :, :3]), list(rows[:, :, 3])
    to_cell, to_output, from_cell = list(to_cell), list(to_output), list(from_cell)
    carry = list(carry) + [np.zeros((batch, hidden_size), cell.dtype)]  # nothing comes after the last step
    dot, multiply, add = np.dot, np.multiply, np.add
    for t in range(seq_len - 1, -1, -1):
        dot(whole_rows[t + 1], lifted, out=dh)
        multiply(dc, carry[t + 1], out=carried)
        multiply(dh, to_cell[t], out=dc)
        add(dc, carried, out=dc)
        multiply(each_gate, from_cell[t], out=gate_rows[t])
        multiply(dh, to_output[t], out=output_rows[t])
    pre = rows[:-1, :, :4]
    return pre.reshape(seq_len, batch, 4 * hidden_size)


def _as_inputs(cell_type: str, clamps: Clamps, w_hh: torch.Tensor):
    """The clamps the kernel can take as time-varying inputs, split from the rest.

    A sigmoid gate set to 0 or 1 and a tanh gate set to -1 or 1 are their own pre-activation
    pushed past -BIG or BIG, and an LSTM's c set to 0 is i := 0 and f := 0: a column per pushed
    gate row, fed BIG times -1, 0 or +1 at each step. Their derivatives there are exactly 0, so
    nothing passes back through them, as in the clamped network. An LSTM's h_s set to v is o_s
    pushed to 0 (the kernel's h_s is then exactly 0 and passes nothing back) and, at step s + 1,
    W_hh[:, u] v added as an input (a column per unit, fed v at s + 1): the clamped h_s read.
    Such clamps, at any steps, cost no extra kernel call. An entry takes this way only where no
    other clamp at that step touches the gate rows it pushes.

    Returns (control (T, R) or None, its (gate rows, R) weights, the other clamps, the h clamps
    taken as inputs (to write over the kernel's output) or None).
    """
    gates = CELLS[cell_type].gate_names
    hidden_size = w_hh.shape[1]
    seq_len = len(next(iter(clamps.masks.values())))
    touches: dict[int, np.ndarray] = {}  # gate block -> (T, H) how many clamps touch its rows

    def touch(block: int, mask: np.ndarray) -> None:
        if block in touches:
            touches[block] += mask
        else:
            touches[block] = mask.astype(np.int8)

    plans = []
    for target, mask in clamps.masks.items():
        values = clamps.values[target]
        if target in gates:
            lowest = -1.0 if _GATES[target].signed else 0.0
            exact = mask & ((values == 1.0) | (values == lowest))
            pushed, signs = (gates.index(target),), np.where(values == 1.0, 1.0, -1.0)
        elif target == "cell_state":  # as the rest: i := 0, f := 1 and the state handed over
            exact, pushed, signs = mask & (values == 0.0), (0, 1), -1.0
        elif cell_type == "lstm":  # h := v: o := 0, v read as an input at the next step
            exact, pushed, signs = mask, (3,), -1.0
        else:  # a GRU's h feeds its own z * h path, an RNN's is all it has: edited kernels
            continue
        for block in pushed:  # pushed or not, every clamped entry touches these rows
            touch(block, mask)
        plans.append((target, exact, pushed, signs))
    pushes: dict[int, np.ndarray] = {}  # gate block -> (T, H) -1, 0 or +1
    taken: dict[str, np.ndarray] = {}
    for target, exact, pushed, signs in plans:
        alone = exact.copy()
        for block in pushed:
            alone &= touches[block] == 1
        if alone.any():
            for block in pushed:
                push = np.where(alone, signs, 0.0)
                pushes[block] = pushes[block] + push if block in pushes else push
        taken[target] = alone
    columns, blocks = [], []
    rows = [(block * hidden_size + units, push[:, units])
            for block, push in sorted(pushes.items()) if len(units := np.flatnonzero(push.any(axis=0)))]
    if rows:
        row_index = np.concatenate([index for index, _ in rows])
        columns.append(torch.from_numpy(np.concatenate([push for _, push in rows], axis=1)))
        block = w_hh.new_zeros(w_hh.shape[0], len(row_index))
        block[torch.from_numpy(row_index), torch.arange(len(row_index))] = BIG
        blocks.append(block)
    pushed_h = None
    if "hidden" in taken and taken["hidden"].any():
        read = np.where(taken["hidden"], clamps.values["hidden"], 0.0)
        units = np.flatnonzero(read.any(axis=0))
        if len(units):  # h_s := v is read at s + 1 as W_hh[:, u] v (v = 0: nothing to add)
            later = np.zeros((seq_len, len(units)))
            later[1:] = read[:-1, units]
            columns.append(torch.from_numpy(later))
            blocks.append(w_hh[:, torch.from_numpy(units)])
        pushed_h = Clamps({"hidden": taken["hidden"]}, {"hidden": np.where(taken["hidden"], clamps.values["hidden"], 0.0)})
    if not columns:
        return None, None, clamps, None
    rest = Clamps(
        {target: mask & ~taken[target] if target in taken else mask for target, mask in clamps.masks.items()},
        {target: np.where(taken[target], 0.0, values) if target in taken else values for target, values in clamps.values.items()},
    )
    control = torch.cat(columns, dim=1)
    return control, torch.cat(blocks, dim=1), rest, pushed_h


#: Stretches this short run step by step in PyTorch's cell ops: a fused kernel call costs about
#: as much as three cell steps, forward and backward (oneDNN's LSTM more).
_STEPS_BY_CELL = 2


class _StepClamps:
    """Per step, what decides how the kernel runs it: the gate and cell clamps and the h clamps,
    and where consecutive steps agree on them."""

    def __init__(self, cell_type: str, clamps: Clamps, seq_len: int | None = None):
        columns = []
        for target in ("cell_state",) + CELLS[cell_type].gate_names:
            if target in clamps.masks:
                columns += [clamps.masks[target], clamps.values[target]]
        self.seq_len = len(next(iter(clamps.masks.values()))) if seq_len is None else seq_len
        self.rows = np.concatenate([np.asarray(c, np.float64) for c in columns], axis=1) if columns else None
        if "hidden" in clamps.masks:
            self.h_rows = np.concatenate([clamps.masks["hidden"], clamps.values["hidden"]], axis=1)
            self.holds = clamps.masks["hidden"].any(axis=1)
        else:
            self.h_rows, self.holds = None, np.zeros(self.seq_len, bool)
        self.same_rows = self._same_as_previous(self.rows)
        self.same_h = self._same_as_previous(self.h_rows)
        self.none = not self.holds.any() and (self.rows is None or not self.rows.any())

    def _same_as_previous(self, rows: np.ndarray | None) -> np.ndarray:
        same = np.ones(self.seq_len, bool)
        if rows is not None:
            same[1:] = (rows[1:] == rows[:-1]).all(axis=1)
        same[0] = False
        return same

    def key(self, step: int, read: int | None) -> bytes:
        rows = b"" if self.rows is None else self.rows[step].tobytes()
        return rows + (b"" if read is None else b"|" + self.h_rows[read].tobytes())


def _segments(cell_type: str, steps: _StepClamps) -> list[tuple[int, int, int | None]]:
    """The stretches (start, stop, read) that each run in one kernel call.

    Within a stretch the gate and cell clamps are the same at every step, and every step after
    the first reads an h_{t-1} that is either unclamped or clamped as h at step `read` is (the
    kernel's columns of W_hh edited for it); the first step reads the state handed over, clamps
    applied. A GRU's z * h_{t-1} path reads the kernel's own (unclamped) h, so a GRU stretch that
    reads clamped h also clamps its every output alike.
    """
    seq_len = steps.seq_len
    if steps.none:
        return [(0, seq_len, None)]
    segments = []
    start = 0
    while start < seq_len:
        read = None
        if steps.holds[start]:
            if not steps.same_h[start]:
                segments.append((start, start + 1, None))  # the next step reads h_start as handed over
                start += 1
                continue
            read = start  # h clamped alike at start - 1 and start: the stretch reads it as a bias
        stop = start + 1
        while stop < seq_len and steps.same_rows[stop]:
            if read is None and steps.holds[stop - 1]:
                break
            if read is not None and not steps.same_h[stop - 1] and stop - 1 > start:
                break
            if read is not None and cell_type == "gru" and not steps.same_h[stop]:
                break
            stop += 1
        segments.append((start, stop, read))
        start = stop
    return segments


def _edited_weights(cell_type: str, weights, clamps: Clamps, step: int, read: int | None, probe_block: torch.Tensor | None):
    """The kernel's parameters for the stretch that starts at `step` and reads h clamped as at
    step `read` (see the module docstring), whether they have biases, and the extra input
    columns' weights (probe, control) with the clamped gates' rows zeroed."""
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
    if not fixed_rows and read is None:
        params = [weights.w_ih, weights.w_hh]
        if weights.b_ih is not None:
            params += [weights.b_ih, weights.b_hh]
        return params, weights.b_ih is not None, probe_block

    w_ih, w_hh = weights.w_ih.clone(), weights.w_hh.clone()
    b_ih = weights.b_ih.clone() if weights.b_ih is not None else w_ih.new_zeros(w_ih.shape[0])
    b_hh = weights.b_hh.clone() if weights.b_hh is not None else w_ih.new_zeros(w_ih.shape[0])
    if read is not None:
        units = torch.from_numpy(np.flatnonzero(clamps.masks["hidden"][read]))
        values = torch.from_numpy(clamps.values["hidden"][read][units.numpy()]).to(w_hh.dtype)
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


def _cell_steps(cell_type, nonlinearity, inputs, params, has_bias, state, cell_state):
    """`_kernel` for a short stretch, step by step in PyTorch's cell ops (nn.LSTMCell's own)."""
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = (params[2], params[3]) if has_bias else (None, None)
    h, c = state[0], None if cell_state is None else cell_state[0]
    outputs = []
    for step_input in inputs:
        if cell_type == "lstm":
            h, c = torch.lstm_cell(step_input, (h, c), w_ih, w_hh, b_ih, b_hh)
        elif cell_type == "gru":
            h = torch.gru_cell(step_input, h, w_ih, w_hh, b_ih, b_hh)
        elif nonlinearity == "relu":
            h = torch.rnn_relu_cell(step_input, h, w_ih, w_hh, b_ih, b_hh)
        else:
            h = torch.rnn_tanh_cell(step_input, h, w_ih, w_hh, b_ih, b_hh)
        outputs.append(h)
    output = torch.stack(outputs)
    return output, output[-1:], None if c is None else c.unsqueeze(0)


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
    The arrays are the caller's: nothing else holds them.
    """
    computed = _GATES_COMPUTED.take(cell_type, inputs, hidden, weights, clamps)
    if computed is not None:
        return computed
    return _gates_and_cell(cell_type, inputs, hidden, weights, clamps)


class _Computed:
    """The gates and cell state `_ClampedLSTM.backward` computed for a run, kept for the one
    `clamped_gates_and_cell` call that asks for them again with equal arguments (the trace's,
    moments later), so that they are computed once. Handed out once; the last few kept."""

    _KEPT = 4

    def __init__(self):
        self._entries: list[tuple] = []
        self._lock = threading.Lock()

    def put(self, arguments: tuple, result: tuple) -> None:
        with self._lock:
            self._entries = self._entries[-(self._KEPT - 1):] + [(arguments, result)]

    def take(self, *arguments) -> tuple | None:
        with self._lock:
            for k, (kept, result) in enumerate(self._entries):
                if _same_arguments(kept, arguments):
                    del self._entries[k]
                    return result
        return None


def _same_arguments(kept: tuple, arguments: tuple) -> bool:
    """Equal arguments: the same cell type, weights and clamps objects, equal inputs and h."""
    cell_type, inputs, hidden, weights, clamps = arguments
    return (
        kept[0] == cell_type and kept[3] is weights and kept[4] is clamps
        and kept[1].shape == inputs.shape and kept[2].shape == hidden.shape
        and kept[1].dtype == inputs.dtype and kept[2].dtype == hidden.dtype
        and torch.equal(kept[1], inputs) and torch.equal(kept[2], hidden)
    )


_GATES_COMPUTED = _Computed()


def _gates_and_cell(
    cell_type: str, inputs: torch.Tensor, hidden: torch.Tensor, weights, clamps: Clamps | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """`clamped_gates_and_cell`, computed."""
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
                mask = np.broadcast_to(clamps.masks["cell_state"][:, None, :], source.shape)
                np.copyto(source, clamps.values["cell_state"][:, None, :], where=mask, casting="same_kind")
                decay = decay.copy()
                decay[mask] = 0.0
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
