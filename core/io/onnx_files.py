"""Reading a user's ONNX model (`.onnx`) as the state_dict of PyTorch recurrent modules.

`read_onnx(data, name)` parses the bytes with `onnx.load_model_from_string` (data only: nothing
in the file is run, and the graph is never executed) and returns the tensors that
`core.io.loading` looks for, in PyTorch's state_dict naming, with a little metadata:

- Every ONNX `LSTM`, `GRU` and `RNN` node of the main graph becomes one recurrent module whose
  prefix is the node's name made safe (letters, digits, `_`, `-`, `/` and `.`-separated parts;
  anything else becomes `_`), or `<op>_<n>` for an unnamed node, n counting that op's nodes
  from 0 (`LSTM_0`, `LSTM_1`, `GRU_0`). PyTorch's exporter names them after the module's scope:
  `/rnn/LSTM`. A name taken twice gets `_<n>` appended.
  - Gate orders are converted: ONNX LSTM rows i, o, f, c become PyTorch's i, f, g, o; GRU rows
    z, r, h become r, z, n; RNN has one block. ONNX's bias B (Wb then Rb) is split into
    `bias_ih_l0` and `bias_hh_l0`. A node without B gets zero biases, so the module is an
    ordinary one with bias=True that computes exactly what the node computes.
  - `direction="bidirectional"` gives `_reverse` keys from direction index 1.
  - RNN nodes record their nonlinearity in the metadata, `nonlinearity.<prefix>`: "tanh" or
    "relu" (ONNX's Tanh and Relu).
- Stacked layers: ONNX has no multi-layer recurrent node, so PyTorch exports a 2-layer nn.LSTM
  as two LSTM nodes. Where node B's input X is node A's output Y reshaped exactly as PyTorch
  feeds one layer into the next (Squeeze of the direction axis for one direction; Transpose
  (0, 2, 1, 3) then Reshape (0, 0, -1) for two, or the Reshape alone for nodes with layout=1;
  Identity anywhere), both nodes have the same op,
  direction and hidden size (and nonlinearity for RNN), and nothing else reads A's Y into
  another recurrent node, the chain is one multi-layer module under the first node's prefix
  (`/rnn/LSTM.weight_ih_l1`, ...). Any other connection leaves each node its own one-layer
  module, which is exact on its own; the loader then offers a choice of prefix.
- Every float initializer whose name looks like a PyTorch parameter path (`head.weight`,
  `embedding.weight`, `rnn.weight_ih_l0`; not anonymous ones such as `onnx::MatMul_254` or
  names without a dot) is also returned under its own name, so the loader finds heads,
  embeddings and recurrent weights that were not fused into a node. The recurrent nodes' own
  W, R and B are left out of this, being in ONNX's layout and gate order.
- nn.Linear on a 3-D input is exported as a MatMul with an anonymous, transposed copy of the
  weight and an Add of `<path>.bias`: that weight is returned as `<path>.weight`, transposed
  back, the path taken from the bias's PyTorch name.

Refused, with a `WeightsError` that says why: bytes that are not an ONNX model, weights kept in
external data files, graphs with no recurrent node and no PyTorch-named recurrent weights,
non-float weights, and every node feature nn.RNN / nn.LSTM / nn.GRU cannot reproduce exactly
(a lone "reverse" node, LSTM peepholes, `input_forget`, `clip`, other activations or their
alpha/beta, GRU `linear_before_reset=0`, weights computed at run time). The initial states and
`sequence_lens` inputs of a node are data given at run time, as they are to a PyTorch module's
forward, and are not read. Nodes inside subgraphs (Loop, If, Scan bodies) are not read.

`onnx` is imported inside `read_onnx`, so the app starts without loading it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from core.io.loading import WeightsError, quoted
from core.limits import LimitError, check_param_count, check_upload_size

#: The ONNX operators read, and the row blocks (gates) of each one's W and R.
GATE_BLOCKS = {"LSTM": 4, "GRU": 3, "RNN": 1}

#: Where each of PyTorch's gate blocks is in ONNX's W, R, Wb and Rb, in PyTorch's order.
#: LSTM: ONNX i, o, f, c -> PyTorch i, f, g(=c), o.  GRU: ONNX z, r, h -> PyTorch r, z, n.
ONNX_BLOCK_FOR_TORCH_BLOCK = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2), "RNN": (0,)}

#: The PyTorch module that computes each operator.
TORCH_MODULES = {"LSTM": "nn.LSTM", "GRU": "nn.GRU", "RNN": "nn.RNN"}

#: What the metadata note says for each op's conversion.
GATE_NOTES = {
    "LSTM": "LSTM gates i, o, f, c reordered to PyTorch's i, f, g, o",
    "GRU": "GRU gates z, r, h reordered to PyTorch's r, z, n",
}

#: The activations PyTorch's modules compute, per direction, as ONNX spells them (lowercased;
#: ONNX runtimes read activation names without regard to case).
TORCH_ACTIVATIONS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh")}

#: ONNX RNN activations nn.RNN has, and its name for each.
RNN_NONLINEARITIES = {"tanh": "tanh", "relu": "relu"}

#: ONNX TensorProto data types read as weights (converted to float32), by their enum value.
FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}

#: TensorProto.EXTERNAL: the tensor's bytes live in a separate file beside the model.
EXTERNAL_DATA_LOCATION = 1

#: A PyTorch parameter path: dotted attribute names or ModuleList indices, at least two parts.
TORCH_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+$")

#: A PyTorch recurrent module's parameter, as core.io.loading looks for them.
TORCH_RECURRENT_RE = re.compile(r"\.(?:weight_ih|weight_hh|bias_ih|bias_hh)_l\d+(?:_reverse)?$")

#: Longest prefix kept from a node's name (PyTorch's scope names are far shorter).
MAX_PREFIX_CHARS = 100

#: How far an input is followed through Identity nodes to find a constant, or back from one
#: node to the previous one through reshaping nodes.
MAX_HOPS = 16

EXTERNAL_DATA_FIX = (
    "Save the model with its weights inside the .onnx file: "
    "`onnx.save_model(model, path, save_as_external_data=False)` "
    "(or export it again without external data)."
)


class _RunTimeWeightsError(WeightsError):
    """A recurrent node whose W, R or B is not stored in the file as a constant."""


@dataclass
class _Layer:
    """One recurrent node, read and converted: its PyTorch tensors for one layer, by suffix."""

    node_name: str
    op: str
    prefix: str
    directions: int
    hidden_size: int
    input_size: int
    layout: int
    nonlinearity: str | None
    has_bias: bool
    x_input: str
    y_output: str
    # "weight_ih" -> [forward tensor, reverse tensor], ... (bias keys always present)
    tensors: dict[str, list[torch.Tensor]] = field(default_factory=dict)


def read_onnx(data: bytes, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors in PyTorch state_dict naming, metadata) read from the bytes of a `.onnx` file.

    `name` is the file's name already made safe for messages. Tensors are float32 CPU tensors;
    metadata has "source" = "onnx", a one-sentence "note" of what was converted, and
    "nonlinearity.<prefix>" for each vanilla RNN. Raises `WeightsError` for anything that cannot
    be read exactly (see the module docstring).
    """
    import onnx  # imported here: only an uploaded .onnx file pays for it

    data = bytes(data)
    if not data:
        raise WeightsError(f"{name} is empty (0 bytes).")
    try:
        check_upload_size(len(data))
    except LimitError as error:
        raise WeightsError(f"{name} is over a limit of this app: {error}") from None
    try:
        model = onnx.load_model_from_string(data)
    # DecodeError, or whatever else a hostile file causes in the parser.
    except Exception as error:  # noqa: BLE001
        raise WeightsError(
            f"{name} is truncated or not an ONNX model: it cannot be read as one "
            f"({quoted(str(error), 120)}). Export the model again with `torch.onnx.export` "
            "(or your framework's ONNX exporter) and upload the .onnx file it writes."
        ) from None
    graph = model.graph
    if not model.HasField("graph") or not (len(graph.node) or len(graph.initializer)):
        raise WeightsError(f"{name} is not an ONNX model: it holds no graph (no nodes and no "
                           "weights).")
    if any(t.data_location == EXTERNAL_DATA_LOCATION for t in graph.initializer):
        external = [t.name for t in graph.initializer if t.data_location == EXTERNAL_DATA_LOCATION]
        raise WeightsError(
            f"{name} keeps its weights in a separate file (ONNX external data, e.g. "
            f"{quoted(external[0])}), which was not uploaded and cannot be read from here. "
            + EXTERNAL_DATA_FIX)
    return _Reader(onnx, graph, name).read()


class _Reader:
    """Reads one parsed graph; every refusal names the file and the node."""

    def __init__(self, onnx_module, graph, name: str):
        self.onnx = onnx_module
        self.graph = graph
        self.name = name
        self.initializers = {t.name: t for t in graph.initializer}
        self.producers = {}
        self.consumers: dict[str, list] = {}
        for node in graph.node:
            for output in node.output:
                if output:
                    self.producers[output] = node
            for value in node.input:
                if value:
                    self.consumers.setdefault(value, []).append(node)
        self.graph_inputs = {value.name for value in graph.input}
        self.sparse_initializers = {t.values.name for t in graph.sparse_initializer}

    # -----------------------------------------------------------------------------------------
    # The whole graph

    def read(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        recurrent = [node for node in self.graph.node
                     if node.op_type in GATE_BLOCKS and node.domain in ("", "ai.onnx")]
        has_torch_recurrent = any(TORCH_NAME_RE.match(t.name) and TORCH_RECURRENT_RE.search(t.name)
                                  for t in self.graph.initializer)
        plans, skipped = [], []
        for node in recurrent:
            try:
                plans.append(self._plan_node(node))
            except _RunTimeWeightsError:
                # An exporter that computes a node's W, R and B from the PyTorch-named weights
                # (reordering them at run time) leaves those weights readable by name.
                if not has_torch_recurrent:
                    raise
                skipped.append(node)
        node_weights = {value for plan in plans for value in plan["weight_inputs"]}
        named = {t.name: t for t in self.graph.initializer
                 if TORCH_NAME_RE.match(t.name) and t.data_type in FLOAT_TYPES
                 and t.name not in node_weights}
        linears = self._linears_from_matmuls(named)
        if not recurrent and not any(TORCH_RECURRENT_RE.search(key) for key in named):
            raise WeightsError(self._no_recurrent_message())

        # Sizes as the file claims them, checked before any array is made from its bytes.
        claimed = sum(plan["params"] for plan in plans)
        claimed += sum(_numel(t) for t in named.values())
        claimed += sum(_numel(t) for _, t in linears.values())
        try:
            check_param_count(claimed)
        except LimitError as error:
            raise WeightsError(f"{self.name} is over a limit of this app: {error}") from None

        layers = self._assign_prefixes([self._convert(plan) for plan in plans], named, linears)
        chains = self._chains(layers)

        tensors: dict[str, torch.Tensor] = {}
        metadata = {"source": "onnx"}
        for key, tensor_proto in named.items():
            tensors[key] = self._as_tensor(tensor_proto, f"the initializer {quoted(key)}")
        for key, (bias_key, tensor_proto) in linears.items():
            # MatMul computes x @ B, nn.Linear x @ weight.T: the weight is B transposed.
            matrix = self._as_tensor(tensor_proto, f"the MatMul weight beside {quoted(bias_key)}")
            tensors[key] = matrix.T.contiguous()
        for chain in chains:
            prefix = chain[0].prefix
            for number, layer in enumerate(chain):
                for kind, per_direction in layer.tensors.items():
                    for direction, tensor in enumerate(per_direction):
                        suffix = "_reverse" if direction else ""
                        tensors[f"{prefix}.{kind}_l{number}{suffix}"] = tensor
            if chain[0].op == "RNN":
                metadata[f"nonlinearity.{prefix}"] = chain[0].nonlinearity
        metadata["note"] = self._note(layers, chains, linears, skipped)
        return tensors, metadata

    def _no_recurrent_message(self) -> str:
        op_types = list(dict.fromkeys(node.op_type for node in self.graph.node))
        if op_types:
            shown = ", ".join(quoted(op) for op in op_types[:8])
            more = f" and {len(op_types) - 8} more" if len(op_types) > 8 else ""
            has = f"its graph has {shown}{more} nodes"
        else:
            has = "its graph has no nodes"
        return (f"{self.name} has no recurrent layer: no ONNX LSTM, GRU or RNN node and no "
                f"weights named like a PyTorch nn.RNN, nn.LSTM or nn.GRU ({has}). Export a "
                "model that contains an nn.RNN, nn.LSTM or nn.GRU, e.g. with "
                "`torch.onnx.export(model, example_input, path, dynamo=False)`.")

    def _note(self, layers: list[_Layer], chains: list[list[_Layer]], linears: dict,
              skipped: list) -> str:
        clauses = [GATE_NOTES[op] for op in GATE_NOTES if any(lay.op == op for lay in layers)]
        if any(layer.has_bias for layer in layers):
            clauses.append("each node's bias B split into bias_ih and bias_hh")
        unbiased = [quoted(layer.node_name or layer.prefix) for layer in layers
                    if not layer.has_bias]
        if unbiased:
            clauses.append(f"zero biases for {', '.join(unbiased[:4])}, which "
                           f"{'has' if len(unbiased) == 1 else 'have'} no B")
        for chain in chains:
            if len(chain) > 1:
                nodes = ", ".join(quoted(layer.node_name or layer.prefix) for layer in chain)
                clauses.append(f"nodes {nodes} read as one {len(chain)}-layer module "
                               f"{quoted(chain[0].prefix)}")
        for key in linears:
            clauses.append(f"{quoted(key)} taken, transposed back, from the MatMul that "
                           "nn.Linear was exported as")
        if skipped:
            nodes = ", ".join(quoted(node.name or node.op_type) for node in skipped[:4])
            clauses.append(f"nodes {nodes} compute their weights at run time and were skipped")
        if not layers:
            clauses.append("recurrent weights read by their PyTorch names")
        return "ONNX model read: " + "; ".join(clauses) + "."

    # -----------------------------------------------------------------------------------------
    # One recurrent node: what it is, refused unless PyTorch computes exactly the same

    def _where(self, node) -> str:
        return f"{self.name}: {self._node_label(node)}"

    @staticmethod
    def _node_label(node) -> str:
        return f"the {node.op_type} node {quoted(node.name) if node.name else '(unnamed)'}"

    def _plan_node(self, node) -> dict:
        """The node checked and its weight tensors found (not yet converted), with its sizes."""
        where = self._where(node)
        attributes = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        directions = self._check_attributes(node, attributes, where)
        nonlinearity = self._check_activations(node, attributes, directions, where)
        inputs = list(node.input) + [""] * (8 - len(node.input))
        if node.op_type == "LSTM" and inputs[7]:
            raise WeightsError(
                f"{where} has peephole weights (input P); nn.LSTM has no peepholes, so it "
                "cannot compute this node. Export an LSTM without peepholes.")
        weights = {}
        for index, label in ((1, "W"), (2, "R"), (3, "B")):
            if inputs[index]:
                weights[label] = self._constant(inputs[index], node, label)
            elif label != "B":
                raise WeightsError(f"{where} has no {label} input (its "
                                   f"{'input' if label == 'W' else 'recurrent'} weights). The "
                                   "file is damaged or not written by a standard ONNX exporter.")
        hidden, input_size = self._check_shapes(node, weights, attributes, directions, where)
        # Missing biases become zeros, so count them as the module will have them.
        params = directions * GATE_BLOCKS[node.op_type] * hidden * (input_size + hidden + 2)
        return {"node": node, "weights": weights, "directions": directions, "hidden": hidden,
                "input": input_size, "nonlinearity": nonlinearity, "params": params,
                "layout": attributes.get("layout", 0),
                "weight_inputs": [inputs[i] for i in (1, 2, 3) if inputs[i]]}

    def _check_attributes(self, node, attributes: dict, where: str) -> int:
        """The node's number of directions, after refusing every attribute that makes it
        compute something its PyTorch module cannot (activations are checked apart)."""
        op, module = node.op_type, TORCH_MODULES[node.op_type]
        direction = attributes.get("direction", b"forward")
        direction = direction.decode("utf-8", "replace") if isinstance(direction, bytes) else ""
        if direction == "reverse":
            raise WeightsError(
                f"{where} runs in reverse only (direction=\"reverse\"). A one-direction PyTorch "
                f"{module} reads the sequence forwards, so it cannot compute this node; export "
                f"a forward or a bidirectional {module} instead.")
        if direction not in ("forward", "bidirectional"):
            raise WeightsError(f"{where} has direction {quoted(direction)}; ONNX allows "
                               "\"forward\", \"reverse\" or \"bidirectional\".")
        if "clip" in attributes:
            raise WeightsError(
                f"{where} clips its gate inputs (clip={_show(attributes['clip'])}); {module} has "
                "no such clipping, so it would compute something else. Export the model without "
                "clip.")
        if op == "LSTM" and attributes.get("input_forget", 0):
            raise WeightsError(
                f"{where} couples its input and forget gates (input_forget=1); nn.LSTM has "
                "independent gates, so it cannot compute this node.")
        reset_after = attributes.get("linear_before_reset", 0)
        if op == "GRU" and not (isinstance(reset_after, int) and reset_after != 0):
            unset = ("" if "linear_before_reset" in attributes
                     else " (ONNX's default: the attribute is not set)")
            raise WeightsError(
                f"{where} has linear_before_reset=0{unset}: it applies the reset gate "
                "to the hidden state before the recurrent weights, while nn.GRU applies it after "
                "them (linear_before_reset=1, what torch.onnx.export writes). nn.GRU cannot "
                "compute this node.")
        if attributes.get("activation_alpha") or attributes.get("activation_beta"):
            raise WeightsError(
                f"{where} sets activation_alpha / activation_beta; {module} has no parameters "
                "for its activations, so gatescope reads nodes with the default activations "
                "only.")
        return 2 if direction == "bidirectional" else 1

    def _check_shapes(self, node, weights: dict, attributes: dict, directions: int,
                      where: str) -> tuple[int, int]:
        """(hidden size, input size) from W (D, G×H, I), R (D, G×H, H) and B (D, 2×G×H), as the
        file claims them (nothing is read from their data yet)."""
        op, blocks = node.op_type, GATE_BLOCKS[node.op_type]
        w_dims, r_dims = list(weights["W"].dims), list(weights["R"].dims)
        hidden = r_dims[2] if len(r_dims) == 3 else 0
        if (len(w_dims) != 3 or len(r_dims) != 3 or hidden < 1 or w_dims[2] < 1
                or w_dims[:2] != [directions, blocks * hidden]
                or r_dims[:2] != [directions, blocks * hidden]):
            kind = "bidirectional" if directions == 2 else "forward"
            raise WeightsError(
                f"{where} has weights of shapes W {tuple(w_dims)} and R {tuple(r_dims)}; a "
                f"{kind} {op} with hidden size H and input size I has W "
                f"({directions}, {blocks}×H, I) and R ({directions}, {blocks}×H, H). The file is "
                "damaged or not written by a standard ONNX exporter.")
        if "hidden_size" in attributes and attributes["hidden_size"] != hidden:
            raise WeightsError(f"{where} says hidden_size={_show(attributes['hidden_size'])} "
                               f"but its R weights have hidden size {hidden}.")
        if "B" in weights and list(weights["B"].dims) != [directions, 2 * blocks * hidden]:
            raise WeightsError(
                f"{where} has a bias B of shape {tuple(weights['B'].dims)}; with hidden size "
                f"{hidden} it must be ({directions}, {2 * blocks * hidden}).")
        return hidden, w_dims[2]

    def _check_activations(self, node, attributes, directions: int, where: str) -> str | None:
        """The RNN's nonlinearity ("tanh", "relu"); None for LSTM and GRU, whose activations must
        be PyTorch's."""
        given = attributes.get("activations")
        if given is not None and not isinstance(given, list):
            raise WeightsError(f"{where} has activations that are not a list of names.")
        names = [a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a)
                 for a in given] if given is not None else None
        lowered = [a.lower() for a in names] if names is not None else None
        if node.op_type == "RNN":
            if lowered is None:
                return "tanh"  # ONNX's default, as nn.RNN's
            if len(lowered) != directions:
                raise WeightsError(f"{where} lists {len(lowered)} activations for "
                                   f"{directions} direction(s).")
            unknown = [a for a, low in zip(names, lowered) if low not in RNN_NONLINEARITIES]
            if unknown:
                raise WeightsError(
                    f"{where} uses the activation {quoted(unknown[0])}; nn.RNN has tanh or relu "
                    "only. Export an nn.RNN (nonlinearity='tanh' or 'relu').")
            if len(set(lowered)) > 1:
                raise WeightsError(
                    f"{where} uses {quoted(names[0])} forwards and {quoted(names[1])} in "
                    "reverse; a bidirectional nn.RNN has one nonlinearity for both directions.")
            return RNN_NONLINEARITIES[lowered[0]]
        if lowered is not None and lowered != list(TORCH_ACTIVATIONS[node.op_type]) * directions:
            wanted = ", ".join(a.capitalize() for a in TORCH_ACTIVATIONS[node.op_type])
            raise WeightsError(
                f"{where} uses the activations {', '.join(quoted(a) for a in names[:6])}; "
                f"{TORCH_MODULES[node.op_type]} computes {wanted} only, so it cannot compute "
                "this node.")
        return None

    def _constant(self, value: str, node, label: str):
        """The TensorProto stored for the input `value` (an initializer, or a Constant node's
        tensor, through Identity nodes), or a refusal saying where the value comes from."""
        where = self._where(node)
        for _ in range(MAX_HOPS):
            if value in self.initializers:
                return self.initializers[value]
            producer = self.producers.get(value)
            if producer is None:
                source = ("is a graph input, given at run time" if value in self.graph_inputs
                          else "is stored as a sparse tensor, which gatescope does not read"
                          if value in self.sparse_initializers
                          else "is not defined in the graph")
                break
            if producer.op_type == "Identity" and producer.domain in ("", "ai.onnx"):
                value = producer.input[0]
                continue
            if producer.op_type == "Constant" and producer.domain in ("", "ai.onnx"):
                tensors = [a.t for a in producer.attribute if a.name == "value"]
                if tensors:
                    if tensors[0].data_location == EXTERNAL_DATA_LOCATION:
                        raise WeightsError(
                            f"{self.name} keeps its weights in a separate file (ONNX external "
                            f"data), which was not uploaded and cannot be read from here. "
                            + EXTERNAL_DATA_FIX)
                    return tensors[0]
                source = "is a Constant that is not a dense tensor"
                break
            source = f"is computed at run time by a {quoted(producer.op_type)} node"
            break
        else:
            source = "comes through too many Identity nodes"
        phrase = {"W": "input weights W", "R": "recurrent weights R", "B": "bias B"}[label]
        raise _RunTimeWeightsError(
            f"{where}: the value of its {phrase} ({quoted(value)}) {source}, not stored in the "
            "file. "
            "gatescope reads weights stored as initializers or constants only and never runs "
            "the graph; export the model with its weights as constants (the default of "
            "torch.onnx.export).")

    def _as_tensor(self, tensor_proto, what: str) -> torch.Tensor:
        """A float32 CPU tensor of a TensorProto whose size was already checked."""
        if tensor_proto.data_type not in FLOAT_TYPES:
            type_name = self.onnx.TensorProto.DataType.Name(tensor_proto.data_type).lower()
            raise WeightsError(f"{self.name}: dtype {type_name} for {what}; gatescope reads "
                               "weights stored as float32, float16, bfloat16 or float64. Export "
                               "the model with float32 weights.")
        try:
            array = self.onnx.numpy_helper.to_array(tensor_proto)
        # A hostile file's data can fail in many ways; each means the same to the user.
        except Exception as error:  # noqa: BLE001
            raise WeightsError(f"{self.name}: {what} cannot be read (its data does not match "
                               f"its shape or type: {quoted(str(error), 120)}); the file is "
                               "damaged.") from None
        # A copy: the array may be a read-only view of the file's bytes.
        return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))

    def _convert(self, plan: dict) -> _Layer:
        """The node's weights in PyTorch's layout and gate order, per direction."""
        node, op = plan["node"], plan["node"].op_type
        hidden, blocks, directions = plan["hidden"], GATE_BLOCKS[op], plan["directions"]
        order = list(ONNX_BLOCK_FOR_TORCH_BLOCK[op])

        def reorder(rows: torch.Tensor) -> torch.Tensor:
            """Rows in ONNX's gate blocks -> the same rows in PyTorch's gate blocks."""
            return rows.reshape(blocks, hidden, *rows.shape[1:])[order].reshape(rows.shape)

        label = self._node_label(node)
        w = self._as_tensor(plan["weights"]["W"], f"the input weights W of {label}")
        r = self._as_tensor(plan["weights"]["R"], f"the recurrent weights R of {label}")
        if "B" in plan["weights"]:
            b = self._as_tensor(plan["weights"]["B"], f"the bias B of {label}")
        else:
            # No B means zero biases (ONNX's default). nn.LSTM/GRU/RNN with bias=True and zero
            # biases computes exactly that, and keeps the module an ordinary one.
            b = torch.zeros(directions, 2 * blocks * hidden)
        rows = blocks * hidden
        layer = _Layer(node_name=node.name, op=op, prefix="", directions=directions,
                       hidden_size=hidden, input_size=plan["input"], layout=plan["layout"],
                       nonlinearity=plan["nonlinearity"], has_bias="B" in plan["weights"],
                       x_input=node.input[0] if node.input else "",
                       y_output=node.output[0] if node.output else "")
        layer.tensors = {
            "weight_ih": [reorder(w[d]).contiguous() for d in range(directions)],
            "weight_hh": [reorder(r[d]).contiguous() for d in range(directions)],
            "bias_ih": [reorder(b[d, :rows]).contiguous() for d in range(directions)],
            "bias_hh": [reorder(b[d, rows:]).contiguous() for d in range(directions)],
        }
        return layer

    # -----------------------------------------------------------------------------------------
    # Prefixes, and stacked nodes read as one module

    def _assign_prefixes(self, layers: list[_Layer], named: dict, linears: dict) -> list[_Layer]:
        """Each layer's prefix: its node's name made safe, else `<op>_<n>`; never one that
        another layer or a PyTorch-named initializer already uses."""
        taken = {key.rsplit(".", 1)[0] for key in list(named) + list(linears)}
        counts: dict[str, int] = {}
        for layer in layers:
            number = counts.get(layer.op, 0)
            counts[layer.op] = number + 1
            fallback = f"{layer.op}_{number}"
            base = safe_prefix(layer.node_name) or fallback
            for candidate in (base, f"{base}_{number}", fallback, f"{fallback}_onnx"):
                if candidate not in taken:
                    break
            else:
                index = 2
                while f"{fallback}_{index}" in taken:
                    index += 1
                candidate = f"{fallback}_{index}"
            layer.prefix = candidate
            taken.add(candidate)
        return layers

    def _chains(self, layers: list[_Layer]) -> list[list[_Layer]]:
        """The layers grouped into stacks, in graph order: a node fed by the previous one's
        output exactly as PyTorch feeds layer k into layer k+1 continues its stack."""
        by_output = {layer.y_output: layer for layer in layers if layer.y_output}
        previous: dict[int, _Layer] = {}
        for layer in layers:
            feeder = self._feeder(layer, by_output)
            if feeder is not None:
                previous[id(layer)] = feeder
        successors: dict[int, list[_Layer]] = {}
        for layer in layers:
            if id(layer) in previous:
                successors.setdefault(id(previous[id(layer)]), []).append(layer)
        # A node whose output feeds two recurrent nodes is a branch, not a stack.
        nexts = {key: found[0] for key, found in successors.items() if len(found) == 1}
        continued = {id(layer) for layer in nexts.values()}
        chains, placed = [], set()
        for layer in layers:
            if id(layer) in continued:
                continue
            chain = [layer]
            placed.add(id(layer))
            while id(chain[-1]) in nexts and id(nexts[id(chain[-1])]) not in placed:
                chain.append(nexts[id(chain[-1])])
                placed.add(id(chain[-1]))
            chains.append(chain)
        # Nodes feeding each other in a cycle (no valid graph has one) stay one-layer modules.
        chains.extend([layer] for layer in layers if id(layer) not in placed)
        return chains

    def _feeder(self, layer: _Layer, by_output: dict[str, _Layer]) -> _Layer | None:
        """The layer whose Y becomes this layer's X through PyTorch's inter-layer reshaping
        only, if it fits as the layer below this one; else None."""
        steps = []
        value = layer.x_input
        for _ in range(MAX_HOPS):
            if value in by_output:
                break
            producer = self.producers.get(value)
            if producer is None or producer.domain not in ("", "ai.onnx") or not producer.input:
                return None
            if producer.op_type != "Identity":
                steps.append(producer)
            value = producer.input[0]
        else:
            return None
        below = by_output[value]
        if (below.op != layer.op or below.directions != layer.directions
                or below.hidden_size != layer.hidden_size
                or layer.input_size != below.directions * below.hidden_size
                or below.nonlinearity != layer.nonlinearity
                or below.layout != layer.layout or below is layer):
            return None
        steps.reverse()  # from Y to X
        ops = [step.op_type for step in steps]
        # Y is (seq, directions, batch, hidden) with layout 0, (batch, seq, directions, hidden)
        # with layout 1; X is (seq, batch, input) or (batch, seq, input).
        direction_axis = 1 if layer.layout == 0 else 2
        if ops == ["Squeeze"] and below.directions == 1:
            return below if self._ints(steps[0], "axes", 1) == [direction_axis] else None
        reshape = steps[-1] if ops and ops[-1] == "Reshape" else None
        # allowzero=1 would make the 0s real zero-length axes instead of "keep this axis".
        if reshape is None or self._ints(reshape, "allowzero", None) not in (None, [0]) or \
                self._ints(reshape, "shape", 1) not in (
                [0, 0, -1], [0, 0, below.directions * below.hidden_size]):
            return None
        if layer.layout == 0 and ops == ["Transpose", "Reshape"]:
            return below if self._ints(steps[0], "perm", None) == [0, 2, 1, 3] else None
        if layer.layout == 1 and ops == ["Reshape"]:
            return below
        return None

    def _ints(self, node, name: str, input_index: int | None) -> list[int] | None:
        """A list of ints given to `node` as the attribute `name` or as a constant input."""
        for attribute in node.attribute:
            if attribute.name == name:
                value = self.onnx.helper.get_attribute_value(attribute)
                values = value if isinstance(value, list) else [value]
                return [int(v) for v in values] if all(isinstance(v, int) for v in values) \
                    else None
        if input_index is None or len(node.input) <= input_index:
            return None
        value = node.input[input_index]
        for _ in range(MAX_HOPS):
            producer = self.producers.get(value)
            if value in self.initializers or producer is None or producer.op_type != "Identity":
                break
            value = producer.input[0]
        tensor_proto = self.initializers.get(value)
        if tensor_proto is None and value in self.producers:
            producer = self.producers[value]
            if producer.op_type == "Constant":
                tensor_proto = next((a.t for a in producer.attribute if a.name == "value"), None)
        if (tensor_proto is None or tensor_proto.data_location == EXTERNAL_DATA_LOCATION
                or math.prod(tensor_proto.dims) > 8):
            return None
        try:
            return [int(v) for v in self.onnx.numpy_helper.to_array(tensor_proto).reshape(-1)]
        # A malformed shape only means "not a stack".
        except Exception:  # noqa: BLE001
            return None

    # -----------------------------------------------------------------------------------------
    # nn.Linear exported as MatMul + Add

    def _linears_from_matmuls(self, named: dict) -> dict[str, tuple[str, object]]:
        """`<path>.weight` -> (its bias's name, the MatMul's anonymous B) for every
        MatMul(x, B) + `<path>.bias` whose weight is not in the file under its own name."""
        found = {}
        for node in self.graph.node:
            if (node.op_type != "MatMul" or node.domain not in ("", "ai.onnx")
                    or len(node.input) != 2 or not node.output):
                continue
            weight_name = node.input[1]
            if weight_name not in self.initializers or TORCH_NAME_RE.match(weight_name):
                continue
            matrix = self.initializers[weight_name]
            if len(matrix.dims) != 2 or matrix.data_type not in FLOAT_TYPES:
                continue
            for add in self.consumers.get(node.output[0], []):
                if add.op_type != "Add" or add.domain not in ("", "ai.onnx"):
                    continue
                others = [value for value in add.input if value != node.output[0]]
                bias_name = others[0] if len(others) == 1 else ""
                bias = named.get(bias_name)
                if (bias is None or not bias_name.endswith(".bias") or list(bias.dims)
                        != [matrix.dims[1]]):
                    continue
                key = bias_name.removesuffix(".bias") + ".weight"
                if key not in named:
                    found[key] = (bias_name, matrix)
        return found


def _show(value: object) -> str:
    """An attribute's value as a short text for a message (a number, or the value quoted)."""
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return quoted(str(value), 40)


def _numel(tensor_proto) -> int:
    """The number of values a TensorProto claims (negative dims, invalid anyway, count as
    positive so that they cannot lower the total)."""
    return math.prod(abs(int(d)) for d in tensor_proto.dims)


def safe_prefix(node_name: str) -> str:
    """A node's name as a state_dict prefix: letters, digits, `_`, `-` and `/` in non-empty
    `.`-separated parts, anything else replaced by `_`; "" for a name with nothing left."""
    cleaned = re.sub(r"[^A-Za-z0-9_\-/.]", "_", node_name[:MAX_PREFIX_CHARS])
    return ".".join(part for part in cleaned.split(".") if part)
