"""The encoder-decoder model of sequence-to-sequence tasks (core/tasks/reverse.py):

    embed (one nn.Embedding for both sides) -> encoder (nn.RNN/LSTM/GRU)
        the encoder's final state, the one vector handed over ->
    decoder (the same cell, layers and hidden size, starting from that state) -> head (nn.Linear)

The encoder's outputs are not used: the decoder sees the input only through the hand-off state
(no attention), which is what makes long inputs hard. The four pieces stay separate attributes,
as in core/model.py, because the tracing engine takes bare recurrent modules and float features:

    x_enc = model.features(example.inputs)                      # (T, input_size)
    x_dec = model.features(example.info["decoder_inputs"])      # (T, input_size)
    trace_handoff(model.encoder, model.decoder, x_enc, x_dec, task.objective(model, target))

    model(enc_ids, dec_ids, lengths)      # teacher-forced logits (B, T, V)
    ids, logits = model.greedy(enc_ids, T, lengths)   # fed its own answers
    seen = trace_encoder_decoder(model, enc_ids, objective)  # as Explore shows one input

One embedding serves both sides: the decoder reads the same symbols the encoder reads (its own
previous answers), plus the start symbol, so one table has every row either side needs, and a
symbol means the same vector to both. Its row 0 is padding and never moves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from core.cells import cell_info
from core.engine.handoff import joined, trace_handoff
from core.engine.tracing import Trace
from core.model import drawn_from, initialise

KIND = "seq2seq"


@dataclass(frozen=True)
class Seq2SeqSpec:
    """Everything needed to rebuild an EncoderDecoderModel's architecture (zoo metadata)."""

    cell: str  # "rnn", "lstm" or "gru": encoder and decoder alike
    vocab_size: int  # rows of the shared embedding (0 is padding)
    input_size: int  # embedding size: what each recurrent module receives per step
    hidden_size: int  # of encoder and decoder alike: the size of the hand-off state
    output_size: int  # the head's classes: vocabulary ids, so an answer can be fed back
    start_id: int  # the decoder's first input
    num_layers: int = 1
    kind: str = KIND

    def __post_init__(self) -> None:
        cell_info(self.cell)  # ValueError naming the cells there are
        if self.kind != KIND:
            raise ValueError(f"an encoder-decoder's kind is {KIND!r}, got {self.kind!r}")
        for name in ("vocab_size", "input_size", "hidden_size", "output_size", "num_layers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.output_size > self.vocab_size:
            raise ValueError(f"output_size ({self.output_size}) must not exceed vocab_size "
                             f"({self.vocab_size}): each answer is fed back as a vocabulary id")
        if not 1 <= self.start_id < self.vocab_size:
            raise ValueError(f"start_id must be a vocabulary id other than padding (1 to "
                             f"{self.vocab_size - 1}), got {self.start_id}")

    def to_dict(self) -> dict:
        return asdict(self)


class EncoderDecoderModel(nn.Module):
    """`embed` (shared) -> `encoder` -> hand-off state -> `decoder` -> `head`; see the module
    docstring. Inputs are token ids, batched (B, T) or one sequence (T,)."""

    def __init__(self, spec: Seq2SeqSpec):
        super().__init__()
        self.spec = spec
        self.embed = nn.Embedding(spec.vocab_size, spec.input_size, padding_idx=0)
        module = cell_info(spec.cell).module
        kwargs = {"nonlinearity": "tanh"} if spec.cell == "rnn" else {}
        self.encoder = module(spec.input_size, spec.hidden_size, num_layers=spec.num_layers,
                              batch_first=True, **kwargs)
        self.decoder = module(spec.input_size, spec.hidden_size, num_layers=spec.num_layers,
                              batch_first=True, **kwargs)
        self.head = nn.Linear(spec.hidden_size, spec.output_size)

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """What a recurrent module receives: the embedding of ids, (B, T, E) or (T, E)."""
        if ids.dtype.is_floating_point:
            raise TypeError("this model embeds token ids: pass a long tensor, not floats")
        return self.embed(ids.long())

    def encode(self, enc_inputs: torch.Tensor, lengths: torch.Tensor | None = None):
        """(encoder output, hand-off state). The state is h_n (L, B, H), or (h_n, c_n) for an
        LSTM ((L, H) for one sequence). With `lengths`, each right-padded sequence's state is
        taken at its own last step, never after reading padding."""
        x = self.features(enc_inputs)
        if lengths is None or x.dim() == 2 or bool((lengths == x.shape[1]).all()):
            return self.encoder(x)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        output, state = self.encoder(packed)
        output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True,
                                                     total_length=x.shape[1])
        return output, state

    def decode(self, dec_inputs: torch.Tensor, state):
        """(decoder output, state) from `state` (the hand-off, or where a decoding left off)."""
        return self.decoder(self.features(dec_inputs), state)

    def readout(self, decoder_output: torch.Tensor) -> torch.Tensor:
        """Logits (..., output_size) from decoder outputs (..., H)."""
        return self.head(decoder_output)

    def decoder_inputs(self, answer: torch.Tensor) -> torch.Tensor:
        """What the decoder is fed while writing `answer` (..., T): the start symbol, then the
        answer shifted right by one (teacher forcing with the right answer; with the model's
        own greedy answer, the very run `greedy` made)."""
        answer = answer.long().clamp(min=0)  # IGNORE at padding reads as padding
        start = torch.full_like(answer[..., :1], self.spec.start_id)
        return torch.cat([start, answer[..., :-1]], dim=-1)

    def forward(self, enc_inputs: torch.Tensor, dec_inputs: torch.Tensor,
                lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, T_dec, output_size), or (T_dec, output_size) for one
        sequence: the decoder fed `dec_inputs` from the encoder's hand-off state."""
        _, state = self.encode(enc_inputs, lengths)
        output, _ = self.decode(dec_inputs, state)
        return self.readout(output)

    def greedy(self, enc_inputs: torch.Tensor, length: int,
               lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding of `length` symbols, each step fed the previous step's most likely
        symbol: (ids (B, length), logits (B, length, output_size)), or (length,) and
        (length, output_size) for one sequence."""
        single = enc_inputs.dim() == 1
        if single:
            enc_inputs = enc_inputs.unsqueeze(0)
        _, state = self.encode(enc_inputs, lengths)
        previous = torch.full((enc_inputs.shape[0], 1), self.spec.start_id, dtype=torch.long,
                              device=enc_inputs.device)
        ids, logits = [], []
        for _ in range(int(length)):
            output, state = self.decode(previous, state)
            step = self.readout(output[:, 0])
            previous = step.argmax(-1, keepdim=True)
            ids.append(previous)
            logits.append(step)
        ids = torch.cat(ids, 1) if ids else enc_inputs.new_zeros((enc_inputs.shape[0], 0))
        logits = torch.stack(logits, 1) if logits else torch.zeros(
            (enc_inputs.shape[0], 0, self.spec.output_size))
        return (ids[0], logits[0]) if single else (ids, logits)


def build_seq2seq_model(spec: Seq2SeqSpec, seed: int = 0, init: str = "default",
                        forget_bias: float | None = None,
                        update_bias: float | None = None) -> EncoderDecoderModel:
    """A freshly initialised EncoderDecoderModel, identical for identical arguments whatever
    other threads do: made on the meta device and drawn from a generator of its own (never
    torch's process-wide one), in PyTorch's order and distributions, as
    core.model.build_sequence_model does. `init`, `forget_bias` and `update_bias` apply to the
    encoder and the decoder alike (core.model.initialise)."""
    generator = torch.Generator().manual_seed(int(seed))
    model = drawn_from(generator, lambda: EncoderDecoderModel(spec))
    for rnn in (model.encoder, model.decoder):
        initialise(rnn, init=init, forget_bias=forget_bias, update_bias=update_bias,
                   generator=generator)
    return model


def rebuild_seq2seq_model(spec: dict, state: dict[str, torch.Tensor]) -> EncoderDecoderModel:
    """An EncoderDecoderModel from its spec (Seq2SeqSpec.to_dict()) and state_dict, eval mode."""
    model = EncoderDecoderModel(Seq2SeqSpec(**spec))
    model.load_state_dict(state)
    return model.eval()


def seq2seq_spec(task, cell: str, hidden_size: int = 64, num_layers: int = 1) -> Seq2SeqSpec:
    """The spec of an encoder-decoder for a seq2seq task (its vocabulary, embedding size and
    start symbol)."""
    if task.kind != KIND:
        raise ValueError(f"task {task.name!r} is {task.kind}, not {KIND}")
    return Seq2SeqSpec(cell=cell, vocab_size=task.vocab_size, input_size=task.input_size,
                       hidden_size=hidden_size, output_size=task.output_size,
                       start_id=task.start_id, num_layers=num_layers)


@dataclass
class EncoderDecoderTrace:
    """One input through an encoder-decoder. The decoder writes as many symbols as the input
    has, each step fed its previous answer (greedy, as in use): `answer` and `logits`. The trace
    is of that run, or of the decoder fed given inputs (the right answer so far, as in
    training: teacher forcing), which `fed` holds.

    `trace` holds the encoder's steps 0 .. handoff - 1 and the decoder's handoff .. on one time
    axis (core.engine.handoff.joined), every gradient of the one objective: the encoder's are
    the decoder's loss flowing back across the hand-off. `answer` (T_dec,) are the symbols
    written, `logits` (T_dec, output_size) their scores, `fed` (T_dec,) what the traced decoder
    read (the start symbol, then the answer so far)."""

    trace: Trace
    handoff: int
    answer: torch.Tensor
    logits: torch.Tensor
    fed: torch.Tensor

    @property
    def decoder_output(self) -> np.ndarray:
        return self.trace.output[self.handoff:]


def trace_encoder_decoder(model: EncoderDecoderModel, inputs: torch.Tensor,
                          objective: Callable[[torch.Tensor], torch.Tensor],
                          length: int | None = None, right_answer: torch.Tensor | None = None
                          ) -> EncoderDecoderTrace:
    """Decode `inputs` (T,) greedily for `length` steps (default T), then trace the encoder and
    that decoder run together (core.engine.handoff.trace_handoff) with `objective`, a scalar
    function of the decoder's output sequence (T_dec, H) (the task's loss). With
    `right_answer` (T_dec,), the traced decoder is fed it instead (teacher forcing)."""
    if inputs.dim() != 1:
        raise ValueError(f"one input sequence of ids (T,), got shape {tuple(inputs.shape)}")
    with torch.no_grad():
        answer, logits = model.greedy(inputs, int(length or inputs.shape[0]))
        fed = model.decoder_inputs(answer if right_answer is None else right_answer)
        x_enc, x_dec = model.features(inputs).float(), model.features(fed).float()
    encoder, decoder = trace_handoff(model.encoder, model.decoder, x_enc, x_dec, objective)
    return EncoderDecoderTrace(joined(encoder, decoder), len(inputs), answer, logits, fed)
