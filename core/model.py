"""The model every gatescope task uses: embedding (optional) -> nn.RNN/LSTM/GRU -> linear head.

The three pieces stay separate attributes because the tracing engine takes the bare recurrent
module (`model.rnn`), the float features one sequence feeds it (`model.features`), and an
objective on its output sequence (`model.readout` inside `Task.objective`):

    x = model.features(example.inputs)            # (T, input_size), float
    trace(model.rnn, x, task.objective(model, example.target))

`forward(inputs) == readout(rnn(features(inputs)))`, batched `(B, T, ...)` or one sequence
`(T, ...)`. Many-to-one tasks read the last step (or step `lengths - 1` in a padded batch);
tagging tasks read every step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from core.cells import cell_info

INITS = ("default", "orthogonal", "xavier")
KINDS = ("regression", "classification", "tagging")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a SequenceModel's architecture (stored in zoo metadata)."""

    cell: str  # "rnn", "lstm" or "gru"
    kind: str  # "regression" | "classification" | "tagging"
    input_size: int  # features per step that the recurrent module receives
    hidden_size: int
    output_size: int  # 1 for regression, number of classes otherwise
    num_layers: int = 1
    vocab_size: int | None = None  # an nn.Embedding(vocab_size, input_size) when set
    bidirectional: bool = False  # a reverse direction beside the forward one in every layer

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def __post_init__(self) -> None:
        cell_info(self.cell)  # ValueError naming the cells there are
        if self.kind not in KINDS:
            raise ValueError(f"unknown task kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        for name in ("input_size", "hidden_size", "output_size", "num_layers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


class SequenceModel(nn.Module):
    """`embed` (nn.Embedding or nn.Identity) -> `rnn` (batch_first) -> `head` (nn.Linear)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        if spec.vocab_size is not None:
            # Index 0 is padding: it never moves, so padded steps carry no learned signal.
            self.embed: nn.Module = nn.Embedding(spec.vocab_size, spec.input_size, padding_idx=0)
        else:
            self.embed = nn.Identity()
        rnn_kwargs = {"nonlinearity": "tanh"} if spec.cell == "rnn" else {}
        self.rnn = cell_info(spec.cell).module(
            spec.input_size, spec.hidden_size, num_layers=spec.num_layers, batch_first=True,
            bidirectional=spec.bidirectional, **rnn_kwargs,
        )
        self.head = nn.Linear(spec.directions * spec.hidden_size, spec.output_size)

    @property
    def many_to_many(self) -> bool:
        return self.spec.kind == "tagging"

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """What the recurrent module receives: `(B, T, input_size)`, or `(T, input_size)` for one
        unbatched sequence. Token ids go through the embedding; float features pass as they are."""
        if self.spec.vocab_size is not None:
            if inputs.dtype.is_floating_point:
                raise TypeError("this model embeds token ids: pass a long tensor, not floats")
            return self.embed(inputs.long())
        if inputs.shape[-1] != self.spec.input_size:
            raise ValueError(
                f"expected {self.spec.input_size} features per step, got shape {tuple(inputs.shape)}"
            )
        return inputs.float()

    def readout(self, rnn_output: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Predictions from the recurrent output `(B, T, D*H)` or `(T, D*H)`.

        Regression: `(B,)`; classification: logits `(B, C)`; tagging: logits `(B, T, C)`.
        `lengths` picks the last real step of each right-padded sequence (many-to-one only).
        A bidirectional many-to-one model reads its forward half at the last step and its
        reverse half at step 0, where each has read the whole sequence.
        """
        if self.many_to_many:
            return self.head(rnn_output)
        if lengths is not None:
            rows = torch.arange(rnn_output.shape[0], device=rnn_output.device)
            last = rnn_output[rows, lengths.long() - 1]
        else:
            last = rnn_output[..., -1, :]
        if self.spec.bidirectional:
            H = self.spec.hidden_size
            last = torch.cat([last[..., :H], rnn_output[..., 0, H:]], dim=-1)
        out = self.head(last)
        return out.squeeze(-1) if self.spec.kind == "regression" else out

    def recurrent(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        """`(output, state)` of the recurrent module on `inputs` (token ids or features).

        A bidirectional module reads a right-padded batch packed, so that its reverse direction
        starts at each sequence's own last step, never in the padding (padded steps of the
        output are 0, as pad_packed_sequence gives them)."""
        features = self.features(inputs)
        if not (self.spec.bidirectional and lengths is not None and features.dim() == 3):
            return self.rnn(features, state)
        packed = nn.utils.rnn.pack_padded_sequence(features, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        output, state = self.rnn(packed, state)
        output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True,
                                                     total_length=features.shape[1])
        return output, state

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        output, _ = self.recurrent(inputs, lengths)
        return self.readout(output, lengths)


def rebuild_sequence_model(spec: dict, state: dict[str, torch.Tensor],
                           nonlinearity: str = "tanh") -> SequenceModel:
    """A SequenceModel from its spec (ModelSpec.to_dict()) and state_dict, in eval mode; a
    vanilla RNN's `nonlinearity` ("tanh" or "relu"), which ModelSpec does not hold, from
    wherever the caller kept it."""
    model = SequenceModel(ModelSpec(**spec))
    if nonlinearity == "relu":
        rnn = model.rnn
        model.rnn = nn.RNN(rnn.input_size, rnn.hidden_size, num_layers=rnn.num_layers,
                           nonlinearity="relu", batch_first=True, bidirectional=rnn.bidirectional)
    model.load_state_dict(state)
    return model.eval()


def state_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's state_dict as safetensors stores it: detached, contiguous, on the CPU."""
    return {name: tensor.detach().contiguous().cpu()
            for name, tensor in module.state_dict().items()}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def initialise(
    rnn: nn.RNNBase,
    init: str = "default",
    forget_bias: float | None = None,
    update_bias: float | None = None,
    generator: torch.Generator | None = None,
) -> None:
    """Re-initialise a recurrent module in place.

    init: "default" keeps PyTorch's U(-1/sqrt(H), 1/sqrt(H)); "orthogonal" makes each gate's
    block of every `weight_hh_l{k}` orthogonal (recurrent Jacobian with singular values 1 at the
    start) and zeroes the biases; "xavier" uses Xavier-uniform per gate block and zero biases.
    forget_bias (LSTM) sets the forget gate's total bias (b_ih + b_hh) so f = sigmoid(bias) > 1/2
    and the cell state is kept by default (Jozefowicz et al. 2015). update_bias (GRU) does the same
    for the update gate z: in PyTorch h' = (1 - z) * n + z * h, so z near 1 keeps the old state.
    generator: where the random draws come from (None: torch's process-wide generator, which
    other threads draw from too).
    """
    if init not in INITS:
        raise ValueError(f"unknown initialiser {init!r}; choose one of {', '.join(INITS)}")
    mode = rnn.mode  # "RNN_TANH", "RNN_RELU", "LSTM", "GRU"
    H = rnn.hidden_size
    with torch.no_grad():
        if init != "default":
            for name, param in rnn.named_parameters():
                if name.startswith("bias"):
                    param.zero_()
                    continue
                for block in param.split(H, dim=0):  # one block per gate
                    if init == "orthogonal" and name.startswith("weight_hh"):
                        nn.init.orthogonal_(block, generator=generator)
                    elif init == "xavier":
                        nn.init.xavier_uniform_(block, generator=generator)
                    # orthogonal: input weights keep PyTorch's default
        if forget_bias is not None and mode == "LSTM":
            _set_gate_bias(rnn, gate=1, value=forget_bias)  # i, f, g, o
        if update_bias is not None and mode == "GRU":
            _set_gate_bias(rnn, gate=1, value=update_bias)  # r, z, n


def _set_gate_bias(rnn: nn.RNNBase, gate: int, value: float) -> None:
    H = rnn.hidden_size
    for name, param in rnn.named_parameters():
        if name.startswith("bias_ih"):
            param[gate * H : (gate + 1) * H] = value
        elif name.startswith("bias_hh"):
            param[gate * H : (gate + 1) * H] = 0.0


def build_sequence_model(
    spec: ModelSpec,
    seed: int = 0,
    init: str = "default",
    forget_bias: float | None = None,
    update_bias: float | None = None,
) -> SequenceModel:
    """A freshly initialised SequenceModel, identical for identical arguments whatever other
    threads do.

    Every visitor runs in a thread of one process, so nothing here touches torch's process-wide
    generator: the modules are made without weights (on the meta device, which draws nothing)
    and every parameter is drawn from a generator of this build's own, in the order and from the
    distributions PyTorch's constructors use. The weights are bit for bit those that
    `torch.manual_seed(seed)` followed by `SequenceModel(spec)` gives (tests/test_concurrency.py
    holds them to it), so the shipped zoo's recipes make the same models as before."""
    generator = torch.Generator().manual_seed(int(seed))
    model = drawn_from(generator, lambda: SequenceModel(spec))
    initialise(model.rnn, init=init, forget_bias=forget_bias, update_bias=update_bias,
               generator=generator)
    return model


def drawn_from(generator: torch.Generator, make) -> nn.Module:
    """The module `make()` builds, made with its constructors' random draws skipped (`SkipDraws`)
    and every parameter then drawn from `generator` as PyTorch's constructors would
    (reset_like_pytorch)."""
    with SkipDraws():
        model = make()
    with torch.no_grad():
        reset_like_pytorch(model, generator)
    return model


#: The functions that draw random numbers into a tensor in place (torch.nn.init's and Tensor's).
_DRAWING = frozenset({
    "normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
    "xavier_normal_", "trunc_normal_", "orthogonal_", "sparse_", "random_", "bernoulli_",
    "exponential_", "geometric_", "cauchy_", "log_normal_",
})


class SkipDraws(torch.overrides.TorchFunctionMode):
    """While it is on, in this thread only (torch's function modes are per thread), a drawing
    function leaves its tensor as it is: modules are made with their parameters allocated and
    undrawn, and torch's process-wide generator is left alone. (Made on the meta device instead,
    an nn.Embedding's normal_ ran PyTorch's Python meta kernel, whose first call imports
    torch._dynamo: 2.1 s of every server's first Explore page.)"""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) in _DRAWING:  # torch.nn.init's pass it as `tensor=`
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def reset_like_pytorch(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation of every submodule (each class's `reset_parameters`),
    drawn from `generator`, in the order the modules were made (`modules()` lists them in the
    order they were assigned, which is the order they were constructed in). A module type whose
    initialisation is not written out here is refused rather than left uninitialised."""
    for module in model.modules():
        if isinstance(module, nn.Embedding):  # N(0, 1), the padding row zero
            nn.init.normal_(module.weight, generator=generator)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].fill_(0)
        elif isinstance(module, nn.RNNBase):  # U(-1/sqrt(H), 1/sqrt(H)) for every parameter
            bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0
            for parameter in module.parameters():
                nn.init.uniform_(parameter, -bound, bound, generator=generator)
        elif isinstance(module, nn.Linear):  # kaiming_uniform_(a=sqrt(5)), bias U(±1/sqrt(fan_in))
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                fan_in = module.weight.shape[1]
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif any(True for _ in module.parameters(recurse=False)):
            raise TypeError(f"no initialisation written for {type(module).__name__}")
