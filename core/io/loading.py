"""Loading a user's own trained nn.RNN / nn.LSTM / nn.GRU weights, safely.

`load_user_weights(data, filename)` takes the bytes of an uploaded file holding a recurrent
module's weights (alone, prefixed as inside a larger model, or wrapped in a training checkpoint),
works out the module from the tensor names and shapes, and returns it in eval mode with the
weights loaded. Formats, by extension (`FORMATS`): safetensors; torch.save archives (`.pt`,
`.pth`, Lightning's `.ckpt`, Hugging Face's `.bin`); Keras HDF5 and `.keras` archives
(core/io/keras_files.py) and ONNX (core/io/onnx_files.py), which are converted to PyTorch's
naming and gate order first. nn.RNNCell / nn.LSTMCell / nn.GRUCell weights (no `_l0` suffix)
read as one-layer modules. TorchScript archives are refused with how to get a state_dict. `inspect_weights(data, filename)` says what is
in such a file without building anything: each recurrent module (prefix, cell, sizes) and the
safetensors metadata, for a page to offer a choice of module.

A file that says what it is is read as it says: a safetensors file whose `__metadata__` has
`"nonlinearity": "relu"` (gatescope's own exports write it for a vanilla RNN) gives an nn.RNN
with relu whatever the caller asked for, since the weights alone cannot tell tanh from relu.

What it trusts: nothing in the file. Files are parsed as data only: safetensors by its own
library, torch archives by `torch.load(weights_only=True)`, which refuses any pickled Python
object other than tensors and plain containers, so a crafted pickle runs no code (a checkpoint's
stray objects, such as Lightning's hyperparameter dict, are read as inert empty stand-ins
through the same restricted unpickler, never imported), HDF5 by h5py and ONNX by its protobuf
parser, each imported only when such a file arrives. Sizes are
checked against `core.limits` before anything large is allocated. Nothing is written to disk;
the file name is used only for its extension and in messages. Every refusal is a `ValueError`
that says what was wrong and how to export a file that works.
"""

from __future__ import annotations

import io
import json
import math
import re
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

import safetensors.torch
import torch
from torch import nn

from core.cells import CELLS, cell_info
from core.limits import (
    LIMITS,
    LimitError,
    check_hidden_size,
    check_layers,
    check_param_count,
    check_upload_size,
)

#: How to make a file this module accepts; appended to every refusal.
EXPORT_HINT = (
    "To export a file gatescope can load, save the state_dict of the nn.RNN, nn.LSTM or nn.GRU "
    "itself: `safetensors.torch.save_file(model.rnn.state_dict(), 'rnn.safetensors')` or "
    "`torch.save(model.rnn.state_dict(), 'rnn.pt')` (with `model.rnn` your recurrent module)."
)

#: File extensions accepted, and the format each one means.
FORMATS = {".safetensors": "safetensors", ".pt": "torch", ".pth": "torch", ".ckpt": "torch",
           ".bin": "torch", ".h5": "keras", ".hdf5": "keras", ".keras": "keras",
           ".onnx": "onnx"}

#: The extensions an upload box offers for weights (without the dot, as st.file_uploader wants).
WEIGHTS_EXTENSIONS = tuple(extension[1:] for extension in FORMATS)

#: How many distinct non-tensor classes a checkpoint may name before it is refused: each is read
#: as an inert stand-in (hyperparameter dicts, loop state), never imported.
MAX_STAND_INS = 16

#: How to turn a TorchScript archive into a file gatescope reads, in two lines of Python.
TORCHSCRIPT_HINT = ("To get a state_dict from it, in Python: `module = torch.jit.load('model.pt')` "
                    "then `torch.save(module.state_dict(), 'weights.pt')`, and upload weights.pt.")

#: Keys under which training checkpoints commonly keep the model's state_dict.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "network")

#: Rows of weight_ih / weight_hh per hidden unit: one block per gate.
#: A cell is told by its row blocks in weight_ih (1 RNN, 3 GRU, 4 LSTM: core.cells).
CELL_BY_GATES = {cell.blocks: key for key, cell in CELLS.items()}

#: Floating dtypes converted to float32 on loading; anything else is refused.
CONVERTIBLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)

#: A safetensors header is JSON naming each tensor: a few KB for any recurrent model.
MAX_SAFETENSORS_HEADER_BYTES = 1024 * 1024

#: Zip entries in a torch.save archive: one per tensor storage plus a few records.
MAX_ZIP_ENTRIES = 10_000

#: The vanilla RNN's nonlinearities (nn.RNN's `nonlinearity=`); LSTM and GRU have none to choose.
NONLINEARITIES = ("tanh", "relu")

#: The safetensors metadata key that says which of NONLINEARITIES an nn.RNN in the file uses.
NONLINEARITY_KEY = "nonlinearity"

_PARAM_RE = re.compile(
    r"^(?:(?P<prefix>.+)\.)?"
    r"(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)(?P<reverse>_reverse)?$"
)
_CELL_PARAM_RE = re.compile(r"^(?:(?P<prefix>.+)\.)?(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh)$")
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")


class WeightsError(ValueError):
    """An uploaded weights file that cannot be loaded; the message says why and how to fix it."""


class AmbiguousWeightsError(WeightsError):
    """The file holds several recurrent modules; `prefixes` lists them for the user to pick one."""

    def __init__(self, message: str, prefixes: list[str]):
        super().__init__(message)
        self.prefixes = prefixes


@dataclass(frozen=True)
class RecurrentConfig:
    """What the keys and shapes of a state_dict say about the module that produced it."""

    cell: str  # "rnn", "lstm" or "gru"
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    bias: bool

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every state_dict key of such a module with its shape, in PyTorch's naming."""
        rows = cell_info(self.cell).blocks * self.hidden_size
        directions = 2 if self.bidirectional else 1
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            inputs = self.input_size if layer == 0 else self.hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                shapes[f"weight_ih_l{layer}{suffix}"] = (rows, inputs)
                shapes[f"weight_hh_l{layer}{suffix}"] = (rows, self.hidden_size)
                if self.bias:
                    shapes[f"bias_ih_l{layer}{suffix}"] = (rows,)
                    shapes[f"bias_hh_l{layer}{suffix}"] = (rows,)
        return shapes

    def describe(self) -> str:
        return (f"{'bidirectional ' if self.bidirectional else ''}{self.cell.upper()} with "
                f"input size {self.input_size}, hidden size {self.hidden_size}, "
                f"{self.num_layers} layer{'s' if self.num_layers > 1 else ''}"
                f"{'' if self.bias else ', no bias'}")


@dataclass(frozen=True)
class WeightsInfo:
    """What a weights file holds, before anything is built: its recurrent modules by prefix
    ("" for a bare state_dict), in the order `AmbiguousWeightsError.prefixes` lists them, and
    the safetensors `__metadata__` (string keys and values; empty for a .pt file)."""

    modules: dict[str, RecurrentConfig | str]  # prefix -> its configuration, or why it is broken
    metadata: dict[str, str]

    @property
    def prefixes(self) -> list[str]:
        return list(self.modules)

    @property
    def nonlinearity(self) -> str | None:
        """The nonlinearity the file's metadata names for its (first) nn.RNN, if it names one."""
        return self.nonlinearity_of(self.prefixes[0] if self.prefixes else "")

    def nonlinearity_of(self, prefix: str) -> str | None:
        """The nonlinearity the file says the nn.RNN at `prefix` uses, if it says."""
        return nonlinearity_in(self.metadata, prefix)

    def describe(self, prefix: str) -> str:
        """"encoder.rnn: LSTM with input size 3, hidden size 4, 1 layer", for a picker."""
        config = self.modules[prefix]
        where = prefix or "(no prefix)"
        return f"{where}: {config.describe() if isinstance(config, RecurrentConfig) else config}"


def inspect_weights(data: bytes, filename: str) -> WeightsInfo:
    """The recurrent modules in `data` and its metadata, with the same checks and refusals as
    `load_user_weights` (a `WeightsError` for a file it cannot read at all). A module whose
    keys or shapes are wrong is listed with the reason instead of its configuration, so a
    picker can still offer the others. A metadata nonlinearity other than tanh or relu is
    refused here, as it is on loading."""
    name, tensors, metadata = _read(data, filename)
    return WeightsInfo(_configurations(tensors, name), metadata)


def _configurations(tensors: dict[str, torch.Tensor], name: str
                    ) -> dict[str, RecurrentConfig | str]:
    """Each recurrent module's configuration, or why it is broken, by prefix in picker order."""
    modules = _modules(tensors, name)
    described: dict[str, RecurrentConfig | str] = {}
    for prefix in sorted(modules):
        try:
            described[prefix] = _infer_config(modules[prefix], name)
        except WeightsError as error:
            described[prefix] = str(error).removesuffix(" " + EXPORT_HINT)
    return described


def load_user_weights(
    data: bytes,
    filename: str,
    *,
    prefix: str | None = None,
    nonlinearity: str | None = None,
) -> nn.Module:
    """The nn.RNN, nn.LSTM or nn.GRU whose state_dict `data` holds, in eval mode on the CPU.

    `filename` chooses the format by its extension (.safetensors, .pt, .pth) and names the file
    in messages; it is never used as a path. `prefix` picks one module when the file holds
    several (e.g. "encoder.rnn"). `nonlinearity` ("tanh" or "relu") applies to nn.RNN only,
    since its weights do not record it: a `nonlinearity` in the file's safetensors metadata
    wins over it (the file knows what it is), and with neither it is tanh, nn.RNN's default.
    The module is built with batch_first=False.
    Raises `WeightsError` (a ValueError) for anything it cannot load.
    """
    name, tensors, metadata = _read(data, filename)
    return recurrent_module(tensors, metadata, name, prefix=prefix,
                            nonlinearity=nonlinearity)[1]


def recurrent_module(tensors: dict[str, torch.Tensor], metadata: Mapping[str, str], name: str,
                     *, prefix: str | None = None, nonlinearity: str | None = None
                     ) -> tuple[str, nn.Module]:
    """(the chosen module's prefix, the module) from a file already read by `read_tensors`:
    `load_user_weights` without reading the file again."""
    if nonlinearity is not None and nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}.")
    chosen_prefix, params = _select_module(tensors, name, prefix)
    where = f"{name}" + (f" (module {_code(chosen_prefix)})" if chosen_prefix else "")
    config = _infer_config(params, where)
    params = _as_float32(params, where)

    module_class = cell_info(config.cell).module
    nonlinearity = nonlinearity_in(metadata, chosen_prefix) or nonlinearity or "tanh"
    extra = {"nonlinearity": nonlinearity} if config.cell == "rnn" else {}
    module = module_class(config.input_size, config.hidden_size, num_layers=config.num_layers,
                          bias=config.bias, batch_first=False,
                          bidirectional=config.bidirectional, **extra)
    module.load_state_dict(params, strict=True)  # the keys and shapes were checked above
    return chosen_prefix, module.eval()


def module_descriptions(tensors: dict[str, torch.Tensor], metadata: Mapping[str, str],
                        name: str) -> dict[str, str]:
    """Every recurrent module in a file read by `read_tensors`, in picker order, described as
    `WeightsInfo.describe` says it ("decoder: LSTM with input size 2, hidden size 5, 2 layers")."""
    info = WeightsInfo(_configurations(tensors, name), dict(metadata))
    return {prefix: info.describe(prefix) for prefix in info.prefixes}


def nonlinearity_in(metadata: Mapping[str, str], prefix: str) -> str | None:
    """What a file's metadata says the nn.RNN at `prefix` uses: its own entry
    (`nonlinearity.<prefix>`, as the Keras and ONNX readers write one per layer), else the
    file-wide one (gatescope's own exports), else None."""
    return metadata.get(f"{NONLINEARITY_KEY}.{prefix}") or metadata.get(NONLINEARITY_KEY)


def read_tensors(data: bytes, filename: str) -> tuple[str, dict[str, torch.Tensor],
                                                       dict[str, str]]:
    """(the file's name for messages, every tensor in it by dotted key in PyTorch's naming,
    its metadata): the one reading of a weights file, for callers that look beyond the
    recurrent module (core/io/user_model.py finds the embedding and head in it)."""
    return _read(data, filename)


def _read(data: bytes, filename: str) -> tuple[str, dict[str, torch.Tensor], dict[str, str]]:
    """(the file's name for messages, its tensors by dotted key, its metadata)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    name = _code(filename if isinstance(filename, str) else "upload")
    file_format = _format_of(filename, name)
    if not data:
        _fail(f"{name} is empty (0 bytes).")
    _within_limit(check_upload_size, len(data), name)
    if file_format == "safetensors":
        tensors = _read_safetensors(data, name)
        return name, _cells_as_layers(tensors), safetensors_metadata(data, name)
    if file_format == "keras":
        from core.io.keras_files import read_keras  # h5py only when a Keras file arrives
        tensors, metadata = read_keras(data, name)
        return name, tensors, metadata
    if file_format == "onnx":
        from core.io.onnx_files import read_onnx  # onnx only when an ONNX file arrives
        tensors, metadata = read_onnx(data, name)
        return name, _cells_as_layers(tensors), metadata
    tensors, metadata = _read_torch(data, name)
    return name, _cells_as_layers(tensors), metadata


# ---------------------------------------------------------------------------------------------
# Messages


def _fail(message: str) -> NoReturn:
    raise WeightsError(f"{message} {EXPORT_HINT}")


def quoted(text: str, limit: int = 80) -> str:
    """User-controlled text (a file name, a module's prefix) in backticks, printable, short and
    inert in markdown: how a page may show what came from a file."""
    return _code(text, limit)


def _code(text: str, limit: int = 80) -> str:
    """User-controlled text (a file name, a key) made printable, short and inert in markdown."""
    cleaned = "".join(
        c for c in str(text) if c != "`" and not unicodedata.category(c).startswith("C")
    )
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return f"`{cleaned}`"


def _keys_listing(keys, limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(_code(key) for key in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _within_limit(check, value, where: str) -> None:
    try:
        check(value)
    except LimitError as error:
        _fail(f"{where} is over a limit of this app: {error}")


# ---------------------------------------------------------------------------------------------
# Reading the two formats


def _format_of(filename: object, name: str) -> str:
    extension = ""
    if isinstance(filename, str) and "." in filename:
        extension = "." + filename.rsplit(".", 1)[1].lower()
    if extension not in FORMATS:
        _fail(
            f"{name} has the wrong extension ({_code(extension) if extension else 'none'}): "
            "gatescope reads .safetensors, .pt, .pth, .ckpt and .bin (PyTorch), .h5, .hdf5 "
            "and .keras (Keras) and .onnx files. A file written by torch.save under another "
            "name can be renamed to .pt."
        )
    return FORMATS[extension]


def _read_safetensors(data: bytes, name: str) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, after checking its header length makes sense."""
    if data[:4] == b"PK\x03\x04":
        _fail(f"{name} is a zip archive, as torch.save writes, not a safetensors file: "
              "rename it to .pt.")
    if len(data) < 10:
        _fail(f"{name} is truncated or not a safetensors file: only {len(data)} bytes.")
    header_bytes = int.from_bytes(data[:8], "little")
    # Refuse an absurd header length here, before the library sees (or allocates for) it.
    if header_bytes > len(data) - 8:
        _fail(f"{name} is truncated or not a safetensors file: its header claims "
              f"{header_bytes:,} bytes but the file has only {len(data) - 8:,} after the "
              "8-byte length.")
    if header_bytes > MAX_SAFETENSORS_HEADER_BYTES or data[8:9] != b"{":
        _fail(f"{name} is not a valid safetensors file: its header "
              f"({header_bytes:,} bytes) is not a JSON table of tensors.")
    try:
        tensors = safetensors.torch.load(data)
        # in the header's order (the library's own order differs from one process to the next)
        order = json.loads(data[8:8 + header_bytes])
        return {key: tensors[key] for key in order if key in tensors}
    except Exception as error:  # noqa: BLE001: SafetensorError or whatever a hostile file causes
        _fail(f"{name} is truncated or not a valid safetensors file "
              f"({_code(str(error), 160)}).")


def safetensors_metadata(data: bytes, name: str) -> dict[str, str]:
    """The `__metadata__` of a safetensors file that `_read_safetensors` has already read: a
    table of strings (the format allows nothing else), with a nonlinearity checked."""
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        return {}
    metadata = {str(key): value for key, value in metadata.items() if isinstance(value, str)}
    said = metadata.get(NONLINEARITY_KEY)
    if said is not None and said not in NONLINEARITIES:
        _fail(f"{name} says in its metadata that its nonlinearity is {_code(said)}, but an "
              "nn.RNN has tanh or relu only.")
    return metadata


def _read_torch(data: bytes, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors of a torch.save zip archive, loaded with weights_only=True (runs no code),
    and a metadata "note" naming the stand-ins used for a checkpoint's non-tensor objects."""
    if data[:4] != b"PK\x03\x04":
        if data[8:9] == b"{":
            _fail(f"{name} looks like a safetensors file: rename it to .safetensors.")
        _fail(f"{name} is not a PyTorch checkpoint: torch.save (PyTorch 1.6 and later) writes "
              "a zip archive, and this file is not one (an old-format or plain pickle file, or "
              "another kind of file).")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        _fail(f"{name} is truncated or corrupt: it starts like a torch.save zip archive but "
              f"cannot be read as one ({_code(str(error))}).")
    unpacked = sum(entry.file_size for entry in entries)
    if len(entries) > MAX_ZIP_ENTRIES or unpacked > LIMITS.max_upload_bytes:
        # torch.save stores its records uncompressed, so this only refuses zip bombs.
        _fail(f"{name} unpacks to {unpacked:,} bytes in {len(entries):,} records, over the "
              f"upload limit of {LIMITS.max_upload_bytes:,} bytes.")
    if any("/code/" in entry.filename or entry.filename.endswith("constants.pkl")
           for entry in entries):
        # torch.jit.save's archives carry the module's code; gatescope runs no code from files.
        _fail(f"{name} is a TorchScript archive (torch.jit.save): it holds the model's code as "
              f"well as its weights, and gatescope never runs code from a file. "
              f"{TORCHSCRIPT_HINT}")
    # A class the weights-only unpickler refuses is read as a plain dict (Lightning's
    # AttributeDict and most hyperparameter holders are dict subclasses), else a list, else an
    # inert object, tried in that order for the class it refused last.
    stand_ins: dict[str, int] = {}  # qualified name -> index into STAND_IN_KINDS
    first_error: Exception | None = None  # what to report when no stand-in fits: the class
    while True:
        try:
            with torch.serialization.safe_globals([(STAND_IN_KINDS[kind], qualified)
                                                   for qualified, kind in stand_ins.items()]):
                loaded = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
            break
        except Exception as error:  # noqa: BLE001: any failure of a hostile file is its fault
            unknown = _unknown_global(str(error))
            first_error = first_error or error
            last = next(reversed(stand_ins), None)
            if unknown is not None and unknown not in stand_ins and len(stand_ins) < MAX_STAND_INS:
                stand_ins[unknown] = 0
            elif (unknown is None and last is not None and "Weights only load failed" in str(error)
                  and stand_ins[last] + 1 < len(STAND_IN_KINDS)):
                stand_ins[last] += 1  # it was not a dict: its items or state did not fit
            else:
                _torch_load_failed(first_error, name)
    metadata = {}
    if stand_ins:
        metadata["note"] = (f"{len(stand_ins)} kind{'s' if len(stand_ins) > 1 else ''} of "
                            "non-tensor object in the checkpoint (" + ", ".join(
                                _code(q, 60) for q in list(stand_ins)[:3]) + ") left unread: "
                            "only its tensors are used.")
    return _collect_tensors(loaded, name), metadata


class _InertObject:
    """A checkpoint's object that is neither a dict nor a list, read as nothing: the weights-only
    unpickler creates it and hands it the object's state, which it drops."""

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __setstate__(self, state):
        pass


#: What a refused class of a checkpoint is read as, in the order tried. torch's weights-only
#: unpickler still does the reading, opcode by opcode, and only ever calls these and its own
#: allow-list, so nothing named in the file is imported or run.
STAND_IN_KINDS = (dict, list, _InertObject)


def _unknown_global(message: str) -> str | None:
    """The class a weights-only load refused, if it may be read as an inert stand-in: a
    checkpoint's bookkeeping, never torch's own modules (a whole pickled model, whose message
    says to save the state_dict instead)."""
    if "Weights only load failed" not in message:
        return None
    found = _GLOBAL_RE.search(message)
    if found is None or found.group(1).startswith(("torch.", "builtins.", "__builtin__.")):
        return None
    return found.group(1)


def _torch_load_failed(error: Exception, name: str) -> NoReturn:
    message = str(error)
    if "Weights only load failed" in message:
        found = _GLOBAL_RE.search(message)
        what = f" ({_code(found.group(1))})" if found else ""
        whole = found is not None and found.group(1).startswith("torch.nn.")
        _fail(f"{name} contains pickled Python objects, not only tensors{what}. gatescope "
              "loads weights only and never runs code from a file"
              + (": this file holds a whole model object, save its state_dict instead."
                 if whole else "."))
    _fail(f"{name} is truncated or corrupt: PyTorch could not read it "
          f"({_code(message.splitlines()[0] if message else type(error).__name__, 160)}).")


def _collect_tensors(loaded: object, name: str) -> dict[str, torch.Tensor]:
    """A flat {dotted key: tensor} view of a state_dict or a training checkpoint."""
    if isinstance(loaded, torch.Tensor):
        _fail(f"{name} holds a single tensor, not a state_dict (a dict of named tensors).")
    if not isinstance(loaded, Mapping):
        _fail(f"{name} holds a {type(loaded).__name__}, not a state_dict "
              "(a dict of named tensors).")
    # A training checkpoint keeps the state_dict beside epochs, optimizer state and so on.
    for _ in range(4):
        wrapped = next((loaded[key] for key in CHECKPOINT_KEYS
                        if isinstance(loaded.get(key), Mapping)), None)
        if wrapped is None:
            break
        loaded = wrapped
    tensors: dict[str, torch.Tensor] = {}
    stack: list[tuple[str, object, int]] = [("", loaded, 0)]
    seen: set[int] = set()  # a pickle can make a dict contain itself, many times over
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach()
            continue
        if id(value) in seen or depth >= 8:
            continue
        seen.add(id(value))
        if isinstance(value, Mapping):
            # pushed in reverse, so that they come off the stack in the file's order
            stack.extend(reversed([(f"{path}.{key}" if path else str(key), item, depth + 1)
                                   for key, item in value.items()]))
        elif isinstance(value, (list, tuple)):
            stack.extend(reversed([(f"{path}.{index}" if path else str(index), item, depth + 1)
                                   for index, item in enumerate(value)]))
    if not tensors:
        _fail(f"{name} holds no tensors.")
    return tensors


# ---------------------------------------------------------------------------------------------
# Finding the recurrent module and what it is


def _cells_as_layers(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """nn.RNNCell / nn.LSTMCell / nn.GRUCell weights (`weight_ih`, `weight_hh`, no `_l0`)
    renamed as a one-layer module's: a cell stepped in a Python loop computes exactly what the
    one-layer nn.RNN / nn.LSTM / nn.GRU computes, and only the module is traced."""
    cells: dict[str, set[str]] = {}
    for key in tensors:
        match = _CELL_PARAM_RE.match(key)
        if match:
            cells.setdefault(match.group("prefix") or "", set()).add(match.group("kind"))
    renamed = dict(tensors)
    for prefix, kinds in cells.items():
        if {"weight_ih", "weight_hh"} <= kinds:
            for kind in kinds:
                key = f"{prefix}.{kind}" if prefix else kind
                renamed[f"{key}_l0"] = renamed.pop(key)
    return renamed


def _select_module(tensors: dict[str, torch.Tensor], name: str,
                   prefix: str | None) -> tuple[str, dict[str, torch.Tensor]]:
    """The prefix of the one recurrent module in the file and its parameters, unprefixed."""
    modules = _modules(tensors, name)
    listing = ", ".join(_code(p) if p else "(no prefix)" for p in sorted(modules))
    if prefix is not None:
        wanted = prefix.rstrip(".")
        if wanted not in modules:
            _fail(f"{name} has no recurrent module at prefix {_code(wanted)}; "
                  f"it has: {listing}.")
        return wanted, modules[wanted]
    if len(modules) > 1:
        message = (f"{name} holds {len(modules)} recurrent modules, at the prefixes {listing}: "
                   "choose one (prefix=...). " + EXPORT_HINT)
        raise AmbiguousWeightsError(message, sorted(modules))
    (only_prefix, params), = modules.items()
    return only_prefix, params


def _modules(tensors: dict[str, torch.Tensor], name: str) -> dict[str, dict[str, torch.Tensor]]:
    """Every recurrent module's parameters, unprefixed, by prefix ("" for none)."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = _PARAM_RE.match(key)
        if match:
            found_prefix = match.group("prefix") or ""
            modules.setdefault(found_prefix, {})[key[len(found_prefix) + 1:] if found_prefix
                                                 else key] = tensor
    if not modules:
        _fail(_not_recurrent_message(tensors, name))
    return modules


def _not_recurrent_message(tensors: dict[str, torch.Tensor], name: str) -> str:
    shapes = ", ".join(f"{_code(key)} {tuple(tensor.shape)}"
                       for key, tensor in sorted(tensors.items())[:6])
    more = f" and {len(tensors) - 6} more" if len(tensors) > 6 else ""
    if any(_CELL_PARAM_RE.match(key) for key in tensors):
        hint = (" These look like part of an nn.RNNCell, nn.LSTMCell or nn.GRUCell (keys "
                "without `_l0`): a cell is read as a one-layer module when both its "
                "`weight_ih` and `weight_hh` are in the file.")
    else:
        hint = ""
    return (f"{name} is not the state_dict of an nn.RNN, nn.LSTM or nn.GRU: it has no "
            f"`weight_ih_l0` / `weight_hh_l0` keys (found {shapes}{more}).{hint}")


def _infer_config(params: dict[str, torch.Tensor], where: str) -> RecurrentConfig:
    """Cell, sizes, layers, direction and bias from the keys and shapes; every key checked."""
    if any(key.startswith("weight_hr_l") for key in params):
        _fail(f"{where} is an nn.LSTM with proj_size (it has `weight_hr_l0` keys): gatescope "
              "shows the gates of LSTMs without projections only.")
    for key in ("weight_hh_l0", "weight_ih_l0"):
        if key not in params:
            _fail(f"{where} is missing the key {_code(key)}.")
    recurrent, inputs = params["weight_hh_l0"], params["weight_ih_l0"]
    if recurrent.dim() != 2 or inputs.dim() != 2:
        _fail(f"{where}: `weight_hh_l0` {tuple(recurrent.shape)} and `weight_ih_l0` "
              f"{tuple(inputs.shape)} must both be 2-D matrices.")
    rows, hidden_size = recurrent.shape
    # weight_hh is (gates × hidden, hidden): its width is the hidden size, and the number of
    # row blocks tells an RNN (1), a GRU (3) and an LSTM (4) apart, whatever the key names.
    gates = rows // hidden_size if hidden_size and rows % hidden_size == 0 else 0
    if gates not in CELL_BY_GATES:
        _fail(f"{where}: `weight_hh_l0` has shape {tuple(recurrent.shape)}, but an RNN, GRU or "
              "LSTM has (H, H), (3H, H) or (4H, H) for hidden size H.")
    if inputs.shape[0] != rows or inputs.shape[1] == 0:
        _fail(f"{where}: `weight_ih_l0` has shape {tuple(inputs.shape)}, but `weight_hh_l0` "
              f"{tuple(recurrent.shape)} needs ({rows}, input size ≥ 1).")

    layer_indices = {int(_PARAM_RE.match(key).group("layer")) for key in params}
    _within_limit(check_layers, max(layer_indices) + 1, where)
    _within_limit(check_hidden_size, int(hidden_size), where)
    config = RecurrentConfig(
        cell=CELL_BY_GATES[gates],
        input_size=int(inputs.shape[1]),
        hidden_size=int(hidden_size),
        num_layers=max(layer_indices) + 1,
        bidirectional=any(key.endswith("_reverse") for key in params),
        bias=any(key.startswith("bias_") for key in params),
    )
    expected = config.expected_shapes()
    _within_limit(check_param_count, sum(math.prod(shape) for shape in expected.values()), where)

    missing = expected.keys() - params.keys()
    unexpected = params.keys() - expected.keys()
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing keys {_keys_listing(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {_keys_listing(unexpected)}")
        _fail(f"{where} looks like a {config.describe()}, but has {' and '.join(problems)}.")
    wrong = [f"{_code(key)} is {tuple(params[key].shape)}, expected {shape}"
             for key, shape in expected.items() if tuple(params[key].shape) != shape]
    if wrong:
        _fail(f"{where} has inconsistent shapes for a {config.describe()}: "
              + "; ".join(wrong[:6]) + ("; ..." if len(wrong) > 6 else "") + ".")
    return config


def _as_float32(params: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """The parameters as finite, dense float32 CPU tensors (half and double are converted)."""
    converted = {}
    for key, tensor in params.items():
        if tensor.layout != torch.strided or tensor.is_quantized or tensor.device.type != "cpu":
            _fail(f"{where}: {_code(key)} is not a plain dense tensor "
                  f"({tensor.layout}, {tensor.device.type}).")
        if tensor.dtype not in CONVERTIBLE_DTYPES:
            _fail(f"{where}: {_code(key)} has dtype {str(tensor.dtype).removeprefix('torch.')}; "
                  "weights must be floating point (float32, float16, bfloat16 or float64).")
        if not torch.isfinite(tensor).all():
            _fail(f"{where}: {_code(key)} contains NaN or infinite values; the model diverged "
                  "or the file is damaged.")
        as_float = tensor.to(torch.float32)
        if not torch.isfinite(as_float).all():
            _fail(f"{where}: {_code(key)} has values too large for float32.")
        converted[key] = as_float
    return converted
