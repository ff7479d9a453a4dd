"""A user's whole model from their files: the recurrent module, the embedding that feeds it, the
head it feeds, and the vocabulary that names the tokens.

    model = load_user_model([(weights_bytes, "charlm.pt"), (vocab_bytes, "vocab.json")])
    model.rnn, model.embedding, model.head, model.vocab, model.note

Everything is found in the one weights file (any format `core.io.loading` reads, converted to
PyTorch's naming), by shape, never by running anything:
- the recurrent module as `core.io.loading` finds it (`prefix` picks one of several);
- the embedding: a `<name>.weight` of shape (vocabulary, input size) with no bias beside it;
- the head: a `<name>.weight` of shape (outputs, directions × hidden size), with its bias.
Where several fit, a name that says what it is wins (`emb`, `head`, `fc`, ...), then file order,
and the note says which was picked and which others there are, so a page can offer the rest.
A Linear that is the first of several layers (an MLP head) is taken as the head only as far as
it goes: the note says that only one Linear layer is applied.

gatescope's own Train-page download (safetensors with a "gatescope SequenceModel" header) is read
back whole: its task, head, vocabulary and nonlinearity (`UserModel.task`, `.sequence_model`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from core.io.loading import (
    FORMATS,
    WeightsError,
    module_descriptions,
    quoted,
    read_tensors,
    recurrent_module,
)
from core.io.sequences import Vocabulary, read_vocabulary
from core.model import SequenceModel, rebuild_sequence_model

#: Extensions of a vocabulary file uploaded beside the weights.
VOCABULARY_EXTENSIONS = (".json", ".txt", ".vocab", ".tsv")

#: Pick the part the file suggests ("auto"), none (None), or a named one.
Choice = str | None | Literal["auto"]

#: Words in a tensor's name that say what it is: they decide between parts of the same shape.
EMBEDDING_WORDS = ("emb", "wte", "tok", "lookup", "encoder.weight")
HEAD_WORDS = ("head", "fc", "out", "classifier", "decoder", "proj", "linear", "dense", "lm_")

GATESCOPE_FORMAT = "gatescope SequenceModel"


@dataclass
class UserModel:
    """What a user's files hold, assembled: see the module docstring."""

    rnn: nn.Module  # nn.RNN / nn.LSTM / nn.GRU, batch_first=False, eval mode
    embedding: nn.Embedding | None
    head: nn.Linear | None
    vocab: Vocabulary | None
    note: str  # what was found and what was assumed, in sentences
    filename: str
    prefix: str  # the recurrent module's prefix ("" for a bare state_dict)
    modules: tuple[str, ...] = ()  # every recurrent module's prefix, for a picker
    module_labels: tuple[str, ...] = ()  # each described: "decoder: LSTM with input size 2, ..."
    embeddings: tuple[str, ...] = ()  # every name that fits as the embedding
    heads: tuple[str, ...] = ()  # every name that fits as the head
    embedding_name: str | None = None
    head_name: str | None = None
    task: str | None = None  # the built-in task a gatescope export was trained on
    sequence_model: SequenceModel | None = field(default=None, repr=False)
    trained: object = field(default=None, repr=False)  # its TrainResult, with its Config file

    @property
    def directions(self) -> int:
        return 2 if self.rnn.bidirectional else 1

    @property
    def output_size(self) -> int:
        """What the head gives per step, else the top layer's width."""
        return self.head.out_features if self.head is not None else (
            self.directions * self.rnn.hidden_size)

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Names of the head's outputs when the vocabulary names them (a language model's next
        token), else None."""
        if self.vocab is not None and self.head is not None and \
                self.head.out_features == self.vocab.size:
            return tuple(self.vocab.tokens)
        return None


def load_user_model(files: list[tuple[bytes, str]], *, prefix: str | None = None,
                    nonlinearity: str | None = None, embedding: Choice = "auto",
                    head: Choice = "auto") -> UserModel:
    """The user's whole model from `files`: one weights file and at most one vocabulary file,
    as (bytes, file name) pairs. `prefix` and `nonlinearity` as in `load_user_weights`;
    `embedding` and `head` pick a part by name, None for none, "auto" to find one.
    Raises `WeightsError` (a ValueError) with a message for the user."""
    weights, vocabulary_file = _sorted_files(files)
    data, filename = weights
    name, tensors, metadata = read_tensors(data, filename)
    if metadata.get("format") == GATESCOPE_FORMAT:
        return _gatescope_export(data, filename, tensors, metadata, vocabulary_file)
    chosen_prefix, rnn = recurrent_module(tensors, metadata, name, prefix=prefix,
                                          nonlinearity=nonlinearity)
    described = module_descriptions(tensors, metadata, name)
    modules = tuple(described)
    own = {key for key in tensors if key.startswith(f"{chosen_prefix}.") or
           (not chosen_prefix and "." not in key)}
    others = {key: value for key, value in tensors.items() if key not in own}
    notes = [f"Recurrent module: {_where(chosen_prefix)}, {_describe(rnn)}."]
    if len(modules) > 1:
        notes.append(f"The file has {len(modules)} recurrent modules; pick another above.")
    if metadata.get("note"):
        notes.append(metadata["note"])

    embeddings = _embedding_names(others, rnn.input_size)
    embedding_name = _chosen(embedding, embeddings, EMBEDDING_WORDS, "embedding", name)
    embedding_module = None
    if embedding_name is not None:
        weight = others[f"{embedding_name}.weight"]
        if not torch.isfinite(weight).all():
            raise WeightsError(f"The embedding {quoted(embedding_name)} contains NaN or "
                               "infinite values.")
        embedding_module = nn.Embedding.from_pretrained(weight.float(), freeze=True)
        notes.append(f"Embedding: {quoted(embedding_name)}, {weight.shape[0]:,} tokens × "
                     f"{weight.shape[1]} (its dimension is the module's input size).")
    heads = _head_names(others, (2 if rnn.bidirectional else 1) * rnn.hidden_size,
                        exclude=embedding_name)
    head_name = _chosen(head, heads, HEAD_WORDS, "head", name)
    head_module = None
    if head_name is not None:
        head_module = _linear(others, head_name)
        notes.append(f"Head: {quoted(head_name)}, a Linear layer from "
                     f"{head_module.in_features} to {head_module.out_features} (applied to the "
                     "top layer's output at each step; anything after it in your model, such "
                     "as a softmax or a second layer, is not).")
    for kind, found, chosen in (("embedding", embeddings, embedding_name),
                                ("head", heads, head_name)):
        if len(found) > 1:
            rest = [quoted(n) for n in found if n != chosen]
            notes.append(f"Also fit as the {kind}: {', '.join(rest[:4])}; pick one below.")
    if embedding_name is None:
        notes.append(f"No embedding: the module reads {rnn.input_size} number"
                     f"{'s' if rnn.input_size > 1 else ''} per step.")
    if head_name is None:
        notes.append("No head: gradients and answers come from the recurrent module's output."
                     + _misfits(others, heads, embedding_name,
                                (2 if rnn.bidirectional else 1) * rnn.hidden_size))

    vocab = None
    if vocabulary_file is not None:
        vocab = read_vocabulary(*vocabulary_file)
        if embedding_module is None:
            raise WeightsError(
                f"The vocabulary {quoted(vocabulary_file[1])} names {vocab.size:,} tokens, but "
                f"no embedding feeds the recurrent module in {name}: a vocabulary is for a "
                "model whose input goes through an nn.Embedding. Pick the embedding, or remove "
                "the vocabulary file.")
        if vocab.size != embedding_module.num_embeddings:
            raise WeightsError(
                f"The vocabulary {quoted(vocabulary_file[1])} has {vocab.size:,} tokens, but "
                f"the embedding {quoted(embedding_name)} has {embedding_module.num_embeddings:,} "
                "rows: they are not from the same model (or one has padding or special tokens "
                "the other lacks).")
        notes.append(f"Vocabulary: {vocab.source}.")
    return UserModel(rnn, embedding_module, head_module, vocab, " ".join(notes), filename,
                     chosen_prefix, modules, tuple(described.values()), tuple(embeddings),
                     tuple(heads), embedding_name, head_name)


# ---------------------------------------------------------------------------------------------
# Files


def _sorted_files(files) -> tuple[tuple[bytes, str], tuple[bytes, str] | None]:
    """(the weights file, the vocabulary file or None), refusing anything else."""
    weights, vocabularies = [], []
    for data, filename in files:
        extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        (weights if extension in FORMATS else vocabularies).append((bytes(data), filename))
    if len(weights) != 1:
        listing = ", ".join(quoted(f) for _, f in weights) or "none"
        raise WeightsError(f"Upload exactly one weights file (found {listing}), and at most one "
                           "vocabulary file beside it. Weights files end in "
                           + ", ".join(FORMATS) + ".")
    if len(vocabularies) > 1:
        listing = ", ".join(quoted(f) for _, f in vocabularies)
        raise WeightsError(f"Upload at most one vocabulary file beside the weights (found "
                           f"{listing}).")
    return weights[0], (vocabularies[0] if vocabularies else None)


# ---------------------------------------------------------------------------------------------
# Finding the parts


def _embedding_names(tensors: dict[str, torch.Tensor], input_size: int) -> list[str]:
    """Names of 2-D `.weight` tensors of shape (tokens, input_size) with no bias beside them."""
    return [key[:-len(".weight")] for key, value in tensors.items()
            if key.endswith(".weight") and value.dim() == 2 and value.shape[1] == input_size
            and value.shape[0] >= 2 and f"{key[:-len('.weight')]}.bias" not in tensors]


def _head_names(tensors: dict[str, torch.Tensor], width: int, exclude: str | None) -> list[str]:
    """Names of Linear layers reading `width` features: `.weight` (out, width), with a bias of
    (out,) beside it if it has one; those with a bias first (an embedding has none)."""
    found = []
    for key, value in tensors.items():
        layer = key[:-len(".weight")]
        if not key.endswith(".weight") or layer == exclude or value.dim() != 2 or \
                value.shape[1] != width:
            continue
        bias = tensors.get(f"{layer}.bias")
        if bias is not None and tuple(bias.shape) != (value.shape[0],):
            continue
        found.append((bias is None, layer))
    return [layer for _, layer in sorted(found, key=lambda item: item[0])]


def _misfits(tensors: dict[str, torch.Tensor], heads: list[str], exclude: str | None,
             width: int) -> str:
    """What a model whose head was not used has that looks like one but does not read the
    top layer's `width` (a head of the wrong size was dropped without a word): a sentence, or
    "" where there is none, or a head that fits was left out by choice."""
    if heads:
        return ""
    misfits = [f"{quoted(key[:-len('.weight')])} ({value.shape[0]} × {value.shape[1]})"
               for key, value in tensors.items() if key.endswith(".weight") and
               value.dim() == 2 and key[:-len(".weight")] != exclude]
    if not misfits:
        return ""
    return (f" The file's Linear-shaped {', '.join(misfits[:4])} cannot be the head: a head "
            f"reads the top layer's {width} number{'s' if width > 1 else ''} per step.")


def _chosen(choice: Choice, found: list[str], words: tuple[str, ...], kind: str,
            name: str) -> str | None:
    if choice is None:
        return None
    if choice != "auto":
        if choice not in found:
            listing = ", ".join(quoted(n) for n in found) or "none"
            raise WeightsError(f"{name} has no {kind} {quoted(choice)} that fits the recurrent "
                               f"module; what fits: {listing}.")
        return choice
    if not found:
        return None
    named = [n for n in found if any(word in n.lower() for word in words)]
    return (named or found)[0]


def _linear(tensors: dict[str, torch.Tensor], layer: str) -> nn.Linear:
    weight = tensors[f"{layer}.weight"].float()
    bias = tensors.get(f"{layer}.bias")
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias.float())
    if not all(torch.isfinite(p).all() for p in linear.parameters()):
        raise WeightsError(f"The head {quoted(layer)} contains NaN or infinite values.")
    return linear.eval()


def _where(prefix: str) -> str:
    return quoted(prefix) if prefix else "the file's only state_dict (no prefix)"


def _describe(rnn: nn.Module) -> str:
    kind = type(rnn).__name__
    if isinstance(rnn, nn.RNN):
        kind += f" ({rnn.nonlinearity})"
    return (f"{'bidirectional ' if rnn.bidirectional else ''}{kind}, input size {rnn.input_size}, "
            f"hidden size {rnn.hidden_size}, {rnn.num_layers} layer"
            f"{'s' if rnn.num_layers > 1 else ''}")


# ---------------------------------------------------------------------------------------------
# gatescope's own download, read back whole


def _gatescope_export(data: bytes, filename: str, tensors: dict[str, torch.Tensor],
                      metadata: dict[str, str], config: tuple[bytes, str] | None) -> UserModel:
    """A Train-page download: rebuilt as the task's own model (embedding, rnn, head), so it
    shows the same view as before it was saved, task and all. With its Config file (the JSON
    the Train page downloads beside it) it is the whole training run: score, steps, time."""
    from core.tasks import TASKS
    task = metadata.get("task")
    try:
        spec = json.loads(metadata["spec"])
        model = rebuild_sequence_model(spec, tensors, metadata.get("nonlinearity", "tanh"))
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise WeightsError(f"{quoted(filename)} says it is a gatescope download, but its "
                           f"metadata or tensors do not fit ({quoted(str(error), 120)}).") from None
    if task not in TASKS:
        raise WeightsError(f"{quoted(filename)} is a gatescope download for the task "
                           f"{quoted(str(task))}, which this version of gatescope does not have.")
    rnn = model.rnn
    note = (f"A gatescope download: {TASKS[task].title}, {_describe(rnn)}, with the task's own "
            "embedding, head and vocabulary, as it was trained.")
    vocab = None
    words = json.loads(metadata.get("vocab") or "null")
    if words:
        vocab = Vocabulary(tuple(words), None, f"the task's own, {len(words):,} words")
    trained = None
    if config is not None:
        trained = _training_run(data, config, task)
        model, rnn = trained.model, trained.model.rnn
        note += f" Its Config file gives how it was trained: {trained.steps:,} steps."
    return UserModel(rnn, model.embed if isinstance(model.embed, nn.Embedding) else None,
                     model.head, vocab, note, filename, "rnn", ("rnn",), (), (), (), None,
                     None, task, model, trained)


def _training_run(weights: bytes, config: tuple[bytes, str], task: str):
    """The TrainResult of a download and the Config JSON beside it (core.io.exports)."""
    from core.io.exports import trained_from_files
    data, name = config
    try:
        meta = data.decode("utf-8")
        if json.loads(meta).get("format") != GATESCOPE_FORMAT or json.loads(meta)["task"] != task:
            raise ValueError("not the Config of these weights")
        return trained_from_files(weights, meta)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError,
            RuntimeError) as error:
        raise WeightsError(f"{quoted(name)} is not the Config file the Train page downloads "
                           f"with these weights ({quoted(str(error), 100)}): upload the weights "
                           "alone, or with their own Config file.") from None
