"""Reading a user's Keras model file (.keras, .h5, .hdf5) as PyTorch state_dict tensors.

`read_keras(data, name)` reads the recurrent layers (LSTM, GRU, SimpleRNN, CuDNNLSTM, CuDNNGRU,
an RNN layer around one LSTMCell / GRUCell / SimpleRNNCell, and Bidirectional around any of
them), Dense layers and Embedding layers of a model saved by Keras 2.0-2.2, tf.keras 2.x or
Keras 3, and returns them named as the equivalent nn.LSTM / nn.GRU / nn.RNN / nn.Linear /
nn.Embedding state_dicts would be, each under the user's own layer name as its prefix (a layer
inside a nested model gets `<model>.<layer>`). The layouts it knows:

- Keras 3 archives (`model.save("m.keras")`): a zip of `config.json` (the model's config) and
  `model.weights.h5`, where a layer's weights live at `layers/<saved name>/.../vars/<index>`
  and the saved name comes from the layer's class (`lstm`, `lstm_1`, `bidirectional`), given in
  the order of the model's layers; the user's names come from config.json. Keras 3's
  `model.save_weights("w.weights.h5")` writes the same HDF5 file alone. Where there is no list
  of layers (that file, a subclassed model) the file's structure says it: a subclassed model
  keeps a layer under its attribute's name (`rnn/cell/vars`), recent Keras 3 versions keep the
  layer's own name on each `vars` group.
- Keras HDF5 (`model.save("m.h5")` in Keras 2, tf.keras 2 and Keras 3): root attribute
  `model_config` (JSON), group `model_weights` listing `layer_names`, each layer's group listing
  its `weight_names` (`lstm/lstm_cell/kernel:0`; Keras 2.0-2.2: `lstm_1/kernel:0`). Keras 2's
  `model.save_weights("w.h5")` writes the same layer groups at the root, without a config.

Keras computes what PyTorch's modules compute only in some configurations; everything else is
refused with a WeightsError that names the layer and says why, never approximated: gates with
hard_sigmoid (Keras 2.0-2.2's default), activations other than tanh (relu too for SimpleRNN),
GRUs with reset_after=False, peephole LSTMs, layers that read backwards on their own.

What it trusts: nothing in the file. The archive's JSON is parsed as data (Keras is never
called, so no code in a file runs), HDF5 is read by h5py from memory, following hard links
only (an external link or external storage could reach files on the server), and sizes are
checked against `core.limits` before an array is read. h5py is imported here, when a Keras
file arrives, so the app's start does not pay for it.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch

from core.cells import cell_info
from core.io.loading import WeightsError, quoted
from core.limits import (
    LIMITS,
    LimitError,
    check_hidden_size,
    check_param_count,
    check_upload_size,
)

#: How to save a Keras model so that gatescope can read it; ends the refusals it can fix.
SAVE_HINT = ("Save the whole model with `model.save('model.keras')` (Keras 3) or "
             "`model.save('model.h5')` (Keras 2 / tf.keras).")

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"

#: Keras 3 archives hold a few small files; more entries than this is not a Keras model.
MAX_ARCHIVE_ENTRIES = 1_000

#: How deep models may nest inside models (a crafted config could nest without end).
MAX_NESTING = 8

#: Layer classes that are one recurrent layer, and the PyTorch cell each one is.
RECURRENT_LAYERS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "rnn", "CuDNNLSTM": "lstm",
                    "CuDNNGRU": "gru", "UnifiedLSTM": "lstm", "UnifiedGRU": "gru"}
#: CuDNN layers have no activation options: tanh and sigmoid are fixed, biases come doubled.
CUDNN_LAYERS = ("CuDNNLSTM", "CuDNNGRU")
#: Cells that a generic `RNN(cell)` layer may wrap, and the PyTorch cell each one is.
RECURRENT_CELLS = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "rnn"}
#: Keras's class of each cell, for messages.
KERAS_CLASSES = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}
#: The classes whose weights are read; the rest (Conv1D, LayerNormalization, ...) are left out.
READ_LAYERS = (*RECURRENT_LAYERS, "RNN", "Bidirectional", "Dense", "Embedding", "TimeDistributed")

#: Keras 3 saves a layer under the snake_case of its class; these are the ones it reads.
SAVED_CLASSES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN", "rnn": "RNN",
                 "bidirectional": "Bidirectional", "dense": "Dense", "embedding": "Embedding",
                 "time_distributed": "TimeDistributed"}
#: What Keras 3 keeps at `vars/<index>`, by layer kind.
V3_ROLES = {"cell": ("kernel", "recurrent_kernel", "bias"), "Dense": ("kernel", "bias"),
            "Embedding": ("embeddings",)}

#: A recurrent cell's level in a Keras 2 weight name: `lstm/lstm_cell/kernel:0` (TensorFlow
#: adds `_1`, `_2` to cell names when a session builds several models).
_CELL_LEVEL_RE = re.compile(r"^[A-Za-z0-9_]*_cell(?:_\d+)?$")
_TENSOR_SUFFIX_RE = re.compile(r":\d+$")
_PREFIX_BAD_RE = re.compile(r"[^A-Za-z0-9_\-/]")


def read_keras(data: bytes, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors in PyTorch state_dict naming, metadata) of a Keras model file.

    `name` is the file's name as it may appear in messages (already backticked). Metadata:
    "source" = "keras", "note" = what was converted, and "nonlinearity.<prefix>" = "tanh" or
    "relu" for each SimpleRNN whose activation the file records. Raises WeightsError for a file
    it cannot read or a layer PyTorch's modules cannot reproduce exactly.
    """
    data = bytes(data)
    try:
        check_upload_size(len(data))
    except LimitError as error:
        _fail(f"{name} is over a limit of this app: {error}")
    if not data:
        _fail(f"{name} is empty (0 bytes).")
    if data.startswith(ZIP_SIGNATURE):
        weights, config, version = _open_archive(data, name)
        return _Reader(name).read_v3_archive(weights, config, version)
    if _is_hdf5(data):
        return _Reader(name).read_hdf5(data)
    _fail(f"{name} is not a Keras model file: it is neither an HDF5 file (.h5, .hdf5) nor a "
          f"Keras 3 archive (.keras). {SAVE_HINT}")


def _fail(message: str) -> NoReturn:
    raise WeightsError(message)


def _is_hdf5(data: bytes) -> bool:
    """HDF5's signature, at the start or after a user block (512, 1024, 2048, ... bytes)."""
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= len(data):
        if data[offset:offset + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False


def _open_archive(data: bytes, name: str) -> tuple[bytes, Any, str]:
    """(model.weights.h5's bytes, config.json parsed, the Keras version) of a .keras zip."""
    limit = LIMITS.max_upload_bytes
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = {entry.filename: entry for entry in archive.infolist()}
            if len(entries) > MAX_ARCHIVE_ENTRIES:
                _fail(f"{name} is a zip archive of {len(entries):,} files, not a Keras model.")
            if "config.json" not in entries and "model.weights.h5" not in entries:
                listing = ", ".join(quoted(entry) for entry in sorted(entries)[:8]) or "nothing"
                _fail(f"{name} is a zip archive but not a Keras 3 model: it has no "
                      f"`config.json` or `model.weights.h5` (it holds {listing}). {SAVE_HINT}")
            if "model.weights.h5" not in entries:
                _fail(f"{name} is a Keras archive without `model.weights.h5`, the file inside "
                      "it that holds the weights (a model saved with sharded weights, or an "
                      f"archive that lost it). {SAVE_HINT}")

            def read(entry_name: str) -> bytes:
                # The size in the zip's directory may lie: read at most the limit, plus one
                # byte to tell that it was over.
                with archive.open(entries[entry_name]) as member:
                    content = member.read(limit + 1)
                if len(content) > limit:
                    _fail(f"{name}: {quoted(entry_name)} unpacks to more than the upload limit "
                          f"of {limit:,} bytes.")
                return content

            weights = read("model.weights.h5")
            config_text = read("config.json") if "config.json" in entries else None
            metadata_text = read("metadata.json") if "metadata.json" in entries else b"{}"
    except WeightsError:
        raise
    except Exception as error:  # noqa: BLE001 (any failure of a hostile zip is the file's)
        _fail(f"{name} is truncated or damaged: it starts like a Keras archive (a zip file) but "
              f"cannot be read as one ({quoted(str(error), 160)}).")
    config = None
    if config_text is not None:
        try:
            config = json.loads(config_text)
        except (ValueError, RecursionError):
            _fail(f"{name} is damaged: its `config.json` is not valid JSON. {SAVE_HINT}")
    try:
        version = json.loads(metadata_text).get("keras_version", "")
    except (ValueError, RecursionError, AttributeError):
        version = ""
    return weights, config, _clean_version(version)


# ---------------------------------------------------------------------------------------------
# What a file holds, before any conversion


@dataclass
class _Layer:
    """One Keras layer's weights as the file stores them.

    `names` are the user's layer names, the outermost nested model first; `config` is the
    layer's entry in the model config ({"class_name", "config"}), None where the file has no
    config; `class_name` is the config's class, or what the file's names say ("" if nothing);
    `parts` holds the arrays by role ("kernel", "recurrent_kernel", "bias", "embeddings", or
    whatever else the file names), one table per direction (two for a Bidirectional layer).
    """

    names: tuple[str, ...]
    config: dict | None
    class_name: str
    parts: list[dict[str, Any]]


def _class_of(config: Any) -> str:
    return str(config.get("class_name", "")) if isinstance(config, dict) else ""


def _options(config: Any) -> dict:
    inner = config.get("config") if isinstance(config, dict) else None
    return inner if isinstance(inner, dict) else {}


def _layer_name(config: Any) -> str:
    name = _options(config).get("name")
    if not isinstance(name, str) and isinstance(config, dict):
        name = config.get("name")
    return name if isinstance(name, str) else ""


def _sublayers(config: Any) -> list | None:
    """The layer configs of a model's config (Sequential, Functional, Model), else None."""
    if not isinstance(config, dict):
        return None
    inner = config.get("config")
    if isinstance(inner, list):  # Keras 2.0-2.1 wrote a Sequential's config as its list of layers
        return [layer for layer in inner if isinstance(layer, dict)]
    if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        return [layer for layer in inner["layers"] if isinstance(layer, dict)]
    return None


def _snake_case(name: str) -> str:
    """Keras 3's `naming.to_snake_case`, which names each layer's group in model.weights.h5."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _text(value.item())
    return str(value)


class _Reader:
    """Reads one file; collects the tensors, the metadata and what the note will say."""

    def __init__(self, name: str):
        self.name = name
        self.tensors: dict[str, torch.Tensor] = {}
        self.metadata: dict[str, str] = {"source": "keras"}
        self.converted: set[str] = set()  # what the note says was done
        self.remarks: list[str] = []  # sentences for the note, e.g. about merge modes
        self.assumed: list[str] = []  # layers whose activations the file does not record
        self.unrecorded: list[str] = []  # SimpleRNNs whose activation the file does not record
        self.skipped: list[str] = []  # layers with weights that are not read, for messages
        self.values_read = 0
        self.described = "Keras file"
        # Keras 3 writes this layout; its defaults are PyTorch's gates (a file without config).
        self.keras3_layout = False
        self.keras_version = ""
        self.prefixes: set[str] = set()

    # -- the two containers ------------------------------------------------------------------

    def read_v3_archive(self, weights: bytes, config: Any, version: str):
        self.keras_version = version
        self.described = f"Keras 3 archive (.keras{f', Keras {version}' if version else ''})"
        self.keras3_layout = True
        if config is not None and not isinstance(config, dict):
            _fail(f"{self.name} is damaged: its `config.json` is not a model configuration.")
        return self._with_hdf5(weights, lambda file: self._walk_v3(file, config, (), 0),
                               inside="its `model.weights.h5`")

    def read_hdf5(self, data: bytes):
        return self._with_hdf5(data, self._walk_hdf5, inside="it")

    def _with_hdf5(self, data: bytes, walk, inside: str):
        import h5py  # here, not at the top: only a Keras file pays for importing it

        try:
            with h5py.File(io.BytesIO(data), "r") as file:
                layers = walk(file)
                for layer in layers:
                    self._convert(layer)
        except WeightsError:
            raise
        except Exception as error:  # noqa: BLE001 (any failure of a hostile file is its own)
            said = str(error).splitlines()[0] if str(error) else type(error).__name__
            _fail(f"{self.name} is truncated or damaged: {inside} starts like an HDF5 file but "
                  f"h5py cannot read it ({quoted(said, 160)}). {SAVE_HINT}")
        if not any(key.rsplit(".", 1)[-1].startswith("weight_hh_l") for key in self.tensors):
            self._no_recurrent_layer(layers)
        self.metadata["note"] = self._note()
        return self.tensors, self.metadata

    def _walk_hdf5(self, file) -> list[_Layer]:
        attrs = dict(file.attrs)
        self.keras_version = _clean_version(attrs.get("keras_version", ""))
        version = f" (Keras {self.keras_version})" if self.keras_version else ""
        if "model_weights" in file:
            root = _group(file, "model_weights", self.name)
            config_text = attrs.get("model_config")
            config = None
            if config_text is not None:
                try:
                    config = json.loads(_text(config_text))
                except (ValueError, RecursionError):
                    _fail(f"{self.name} is damaged: its `model_config` attribute is not valid "
                          f"JSON. {SAVE_HINT}")
                if not isinstance(config, dict):
                    _fail(f"{self.name} is damaged: its `model_config` attribute is not a "
                          "model configuration.")
            self.described = f"Keras HDF5 model{version}"
            return self._walk_legacy(root, config)
        if _has_attribute(file, "layer_names"):
            self.described = f"Keras HDF5 weights file{version}"
            return self._walk_legacy(file, None)
        if "layers" in file:
            self.described = "Keras 3 weights file (.weights.h5)"
            self.keras3_layout = True
            return self._walk_v3(file, None, (), 0)
        entries = ", ".join(quoted(key) for key in sorted(file.keys())[:8]) or "nothing"
        _fail(f"{self.name} is an HDF5 file but not one Keras wrote: it has no `model_weights` "
              "group or `layer_names` attribute (Keras 2, tf.keras) and no `layers` group "
              f"(Keras 3); at its top level it holds {entries}. {SAVE_HINT}")

    # -- Keras 3: layers/<saved name>/.../vars/<index> ---------------------------------------

    def _walk_v3(self, group, config: Any, names: tuple[str, ...], depth: int) -> list[_Layer]:
        """The layers of the model whose weights are in `group`, matched to `config`.

        A Sequential or Functional model keeps its layers under `layers/`, each in a group
        named by the snake_case of its class and numbered in the order of the model's layers
        (`lstm`, `dense`, `lstm_1`); Keras loads them by that order alone, and so does this.
        Without a list of layers (a weights-only file, a subclassed model) the file's own
        structure is read instead.
        """
        if depth > MAX_NESTING:
            _fail(f"{self.name} nests models more than {MAX_NESTING} deep.")
        sublayers = _sublayers(config) if config is not None else None
        if sublayers is None:
            return self._walk_v3_tree(group, names, depth, top=depth == 0)
        if "layers" not in group:
            return []
        layers_group = _group(group, "layers", self.name)
        children = set(layers_group.keys())
        found: list[_Layer] = []
        used: dict[str, int] = {}
        # (A Sequential's InputLayer is not among its saved layers, but it would only take the
        # name `input_layer`, which no other class does.)
        for layer_config in sublayers:
            class_name = _class_of(layer_config)
            saved = _snake_case(class_name)
            if saved in used:
                used[saved] += 1
                saved = f"{saved}_{used[saved]}"
            else:
                used[saved] = 0
            if saved not in children:
                continue  # a layer without weights (InputLayer, Dropout, ...)
            child = _group(layers_group, saved, self.name)
            layer_names = names + ((_layer_name(layer_config) or saved),)
            if _sublayers(layer_config) is not None:
                found += self._walk_v3(child, layer_config, layer_names, depth + 1)
            elif class_name not in READ_LAYERS:
                # Another kind of layer; a custom one may hold recurrent layers of its own.
                found += (self._walk_v3_tree(child, layer_names, depth + 1)
                          + self._v3_unread(child, layer_names, class_name))
            else:
                found += self._v3_layer(child, layer_config, class_name, layer_names)
        return found

    def _walk_v3_tree(self, group, names: tuple[str, ...], depth: int,
                      top: bool = False) -> list[_Layer]:
        """Layers found by the file's structure alone. A subclassed model keeps each layer under
        its attribute's name (`rnn/cell/vars`); a `layers/` container names them by class, with
        the user's name on their `vars` group in recent Keras versions."""
        import h5py

        if depth > MAX_NESTING:
            _fail(f"{self.name} nests models more than {MAX_NESTING} deep.")
        found: list[_Layer] = []
        for key in group:
            if key == "vars" or (top and key == "optimizer"):  # the optimizer's slots, not layers
                continue
            child = _child(group, key, self.name)
            if not isinstance(child, h5py.Group):
                continue
            if key == "layers":
                for sub_key in child:
                    sub = _group(child, sub_key, self.name)
                    saved_class = SAVED_CLASSES.get(re.sub(r"_\d+$", "", sub_key), "")
                    found += self._v3_node(sub, saved_class,
                                           names + ((_vars_name(sub) or sub_key),), depth + 1)
            else:
                found += self._v3_node(child, "", names + (key,), depth + 1)
        return found

    def _v3_node(self, group, class_hint: str, names: tuple[str, ...],
                 depth: int) -> list[_Layer]:
        """One group of a Keras 3 weights file read without config: a layer, or a block or
        model with layers inside. `class_hint` is the class its group's name says, if any."""
        # A layer under an attribute's name: its class from the layer's own (default) name,
        # `dense_2`, if it kept one.
        class_hint = class_hint or SAVED_CLASSES.get(re.sub(r"_\d+$", "", _vars_name(group)), "")
        if "forward_layer" in group and "backward_layer" in group:
            return self._v3_layer(group, None, "Bidirectional", names)
        if "cell" in group:
            recurrent = class_hint in RECURRENT_LAYERS
            return self._v3_layer(group, None, class_hint if recurrent else "RNN", names)
        if class_hint == "TimeDistributed":
            return self._v3_layer(group, None, class_hint, names)
        if not class_hint and _looks_like_dense(group):
            class_hint = "Dense"
        if class_hint in ("Dense", "Embedding"):
            return self._v3_layer(group, None, class_hint, names)
        return self._walk_v3_tree(group, names, depth) + self._v3_unread(group, names, "")

    def _v3_unread(self, group, names: tuple[str, ...], class_name: str) -> list[_Layer]:
        """Nothing; a layer with weights of its own is listed among those not read."""
        if "vars" in group and len(_group(group, "vars", self.name)):
            self.skipped.append(quoted(".".join(names))
                                + (f" ({quoted(class_name)})" if class_name else ""))
        return []

    def _v3_layer(self, group, config: Any, class_name: str,
                  names: tuple[str, ...]) -> list[_Layer]:
        if class_name == "TimeDistributed":
            inner = _options(config).get("layer") if config is not None else None
            inner_class = _class_of(inner) if inner is not None else ""
            if "layer" not in group:
                return []
            inner_group = _group(group, "layer", self.name)
            if inner_class in ("", "Dense") and "vars" in inner_group:
                return [_Layer(names, inner, "Dense", [self._v3_vars(inner_group, "Dense")])]
            self.skipped.append(f"{quoted('.'.join(names))} (TimeDistributed)")
            return []
        if class_name == "Bidirectional":
            parts = []
            for side in ("forward_layer", "backward_layer"):
                side_group = _group(group, side, self.name) if side in group else None
                if side_group is None or "cell" not in side_group:
                    _fail(f"{self.name}: Bidirectional layer {quoted('.'.join(names))} has no "
                          f"weights for its {side.split('_')[0]} direction; the file is damaged.")
                parts.append(self._v3_vars(_group(side_group, "cell", self.name), "cell"))
            return [_Layer(names, config, class_name, parts)]
        if "cell" in group and (class_name in RECURRENT_LAYERS or class_name == "RNN"):
            return [_Layer(names, config, class_name,
                           [self._v3_vars(_group(group, "cell", self.name), "cell")])]
        if class_name in ("Dense", "Embedding") and "vars" in group:
            return [_Layer(names, config, class_name, [self._v3_vars(group, class_name)])]
        if "vars" in group and len(_group(group, "vars", self.name)) or "cell" in group:
            self.skipped.append(f"{quoted('.'.join(names))} ({quoted(class_name or 'unknown')})")
        return []

    def _v3_vars(self, group, kind: str) -> dict[str, Any]:
        """A Keras 3 `vars` group's datasets by role (`vars/0` is the kernel, and so on)."""
        roles = V3_ROLES[kind]
        if "vars" not in group:
            return {}
        variables = _group(group, "vars", self.name)
        found = {}
        for key in variables:
            index = int(key) if key.isdigit() else None
            role = roles[index] if index is not None and index < len(roles) else f"vars/{key}"
            found[role] = _dataset(variables, key, self.name)
        return found

    # -- Keras 2, tf.keras, Keras 3 legacy HDF5: layer_names, weight_names --------------------

    def _walk_legacy(self, root, config: Any) -> list[_Layer]:
        # Without a list of layers in the config, each layer is read from its weights' names
        # and shapes, as in a weights-only file.
        configs = {_layer_name(layer): layer for layer in _sublayers(config) or []}
        found: list[_Layer] = []
        for layer_name in _attribute_strings(root, "layer_names", self.name):
            group = _group(root, layer_name, self.name)
            weights = [(weight_name, _dataset(group, weight_name, self.name))
                       for weight_name in _attribute_strings(group, "weight_names", self.name)]
            if weights:
                found += self._legacy_layer((layer_name,), configs.get(layer_name), weights, 0)
        return found

    def _legacy_layer(self, names: tuple[str, ...], config: Any,
                      weights: list[tuple[str, Any]], depth: int) -> list[_Layer]:
        if depth > MAX_NESTING:
            _fail(f"{self.name} nests models more than {MAX_NESTING} deep.")
        where = quoted(".".join(names))
        sublayers = _sublayers(config) if config is not None else None
        if sublayers is not None:
            return self._legacy_nested(names, sublayers, weights, depth)
        if config is None:
            clusters = _clusters(weights)
            if len(clusters) > 1:
                # A nested model in a file without config: one layer per weight-name path.
                found = []
                for path, members in clusters.items():
                    found += self._legacy_layer(names + (path[-1],), None, members, depth + 1)
                return found
        class_name = _class_of(config)
        if class_name == "TimeDistributed":
            config = _options(config).get("layer")
            class_name = _class_of(config)
        if config is not None and class_name not in READ_LAYERS:
            self.skipped.append(f"{where} ({quoted(class_name or 'unknown')})")
            return []
        # Each direction's weights start with its kernel (forward first, as Keras saves them).
        parts: list[dict[str, Any]] = []
        for weight_name, dataset in weights:
            role = _TENSOR_SUFFIX_RE.sub("", weight_name.rsplit("/", 1)[-1])
            if not parts or (role == "kernel" and "kernel" in parts[-1]):
                parts.append({})
            if role in parts[-1]:
                _fail(f"{self.name}: layer {where} lists two weights named {quoted(role)}; the "
                      "file is damaged.")
            parts[-1][role] = dataset
        if not class_name:
            class_name = _guess_class(weights, parts)
        return [_Layer(names, config, class_name, parts)]

    def _legacy_nested(self, names, sublayers, weights, depth) -> list[_Layer]:
        """A nested model's weights, one group for all its layers, split by layer name."""
        by_name = {_layer_name(layer): layer for layer in sublayers if _layer_name(layer)}
        members: dict[str, list] = {}
        for weight_name, dataset in weights:
            levels = [level for level in weight_name.split("/")[:-1] if level not in names]
            owner = next((level for level in levels if level in by_name), None)
            if owner is None:
                _fail(f"{self.name}: weight {quoted(weight_name)} of nested model "
                      f"{quoted('.'.join(names))} names none of its layers, so gatescope cannot "
                      f"tell which layer it belongs to. {SAVE_HINT}")
            members.setdefault(owner, []).append((weight_name, dataset))
        found: list[_Layer] = []
        for layer_name, layer_config in by_name.items():
            if layer_name in members:
                found += self._legacy_layer(names + (layer_name,), layer_config,
                                            members[layer_name], depth + 1)
        return found

    # -- conversion --------------------------------------------------------------------------

    def _convert(self, layer: _Layer) -> None:
        roles = set().union(*layer.parts) if layer.parts else set()
        if layer.class_name == "Embedding":
            self._embedding(layer)
        elif layer.class_name == "Dense":
            self._dense(layer)
        elif (layer.class_name in RECURRENT_LAYERS or layer.class_name in ("RNN", "Bidirectional")
              or "recurrent_kernel" in roles):
            self._recurrent(layer)
        elif roles:
            self.skipped.append(f"{quoted('.'.join(layer.names))}"
                                + (f" ({quoted(layer.class_name)})" if layer.class_name else ""))

    def _prefix(self, names: tuple[str, ...]) -> str:
        """The user's layer names as a state_dict prefix: `encoder.lstm`, unique in the file."""
        prefix = ".".join(_PREFIX_BAD_RE.sub("_", name) or "_" for name in names)
        unique, count = prefix, 1
        while unique in self.prefixes:
            count += 1
            unique = f"{prefix}_{count}"
        self.prefixes.add(unique)
        return unique

    def _array(self, dataset, layer: str, role: str) -> np.ndarray:
        """A dataset's values as float64, after checking its kind and size."""
        import h5py

        where = f"weight {quoted(role)} of layer {layer}"
        if not isinstance(dataset, h5py.Dataset) or dataset.shape is None:
            _fail(f"{self.name}: {where} is not an array; the file is damaged.")
        if dataset.external or dataset.is_virtual:
            _fail(f"{self.name}: {where} keeps its values in other files, which gatescope never "
                  f"reads. {SAVE_HINT}")
        self.values_read += int(np.prod(dataset.shape, dtype=np.int64))
        try:
            check_param_count(self.values_read)
        except LimitError as error:
            _fail(f"{self.name} is over a limit of this app: {error}")
        bfloat16 = _text(dataset.attrs.get("dtype", "")) == "bfloat16"
        if bfloat16 and dataset.dtype.itemsize == 2:
            # Keras 3 stores bfloat16 as 2 opaque bytes: the top half of a float32's bits.
            raw = np.frombuffer(dataset[()].tobytes(), dtype="<u2").astype(np.uint32) << 16
            return raw.view(np.float32).reshape(dataset.shape).astype(np.float64)
        if dataset.dtype.kind != "f":
            _fail(f"{self.name}: {where} has dtype {quoted(str(dataset.dtype))}; Keras weights "
                  "are floating point.")
        return np.asarray(dataset[()], dtype=np.float64)

    def _emit(self, key: str, values: np.ndarray) -> None:
        self.tensors[key] = torch.from_numpy(
            np.ascontiguousarray(values, dtype=np.float32)).clone()

    def _dense(self, layer: _Layer) -> None:
        where = quoted(".".join(layer.names))
        part = layer.parts[0] if len(layer.parts) == 1 else {}
        kernel, bias = part.get("kernel"), part.get("bias")
        if (kernel is None or len(kernel.shape) != 2 or set(part) - {"kernel", "bias"}
                or (bias is not None and tuple(bias.shape) != (kernel.shape[1],))):
            shapes = ", ".join(f"{role} {tuple(item.shape)}" for role, item in part.items())
            self.skipped.append(f"{where} (Dense with weights {shapes or 'none'})")
            return
        prefix = self._prefix(layer.names)
        self._emit(f"{prefix}.weight", self._array(kernel, where, "kernel").T)
        if bias is not None:
            self._emit(f"{prefix}.bias", self._array(bias, where, "bias"))
        self.converted.add("dense")

    def _embedding(self, layer: _Layer) -> None:
        part = layer.parts[0] if len(layer.parts) == 1 else {}
        table = part.get("embeddings")
        if table is None or len(table.shape) != 2:
            self.skipped.append(f"{quoted('.'.join(layer.names))} (Embedding)")
            return
        prefix = self._prefix(layer.names)
        self._emit(f"{prefix}.weight",
                   self._array(table, quoted(".".join(layer.names)), "embeddings"))

    def _recurrent(self, layer: _Layer) -> None:
        where = quoted(".".join(layer.names))
        directions = self._directions(layer, where)
        if len(layer.parts) != len(directions):
            _fail(f"{self.name}: layer {where} has {len(layer.parts)} sets of recurrent weights "
                  f"where a {'Bidirectional' if len(directions) == 2 else 'one-direction'} "
                  f"layer has {len(directions)}; the file is damaged.")
        cells = [self._cell(config, part, where) for config, part in zip(directions, layer.parts)]
        if len({(cell.kind, cell.hidden, cell.inputs, cell.bias_ih is None, cell.nonlinearity)
                for cell in cells}) > 1:
            described = " and ".join(cell.describe() for cell in cells)
            _fail(f"{self.name}: Bidirectional layer {where} has different forward and backward "
                  f"layers ({described}), but a bidirectional nn.LSTM, nn.GRU or nn.RNN has the "
                  "same cell, size, bias and activation both ways.")
        prefix = self._prefix(layer.names)
        for cell, suffix in zip(cells, ("", "_reverse")):
            self._emit(f"{prefix}.weight_ih_l0{suffix}", cell.weight_ih)
            self._emit(f"{prefix}.weight_hh_l0{suffix}", cell.weight_hh)
            if cell.bias_ih is not None:
                self._emit(f"{prefix}.bias_ih_l0{suffix}", cell.bias_ih)
                self._emit(f"{prefix}.bias_hh_l0{suffix}", cell.bias_hh)
        if cells[0].nonlinearity:
            self.metadata[f"nonlinearity.{prefix}"] = cells[0].nonlinearity

    def _directions(self, layer: _Layer, where: str) -> list:
        """The config of each direction a recurrent layer has (None where the file has none):
        [forward, backward] for a Bidirectional layer, else [the layer's own]."""
        options = _options(layer.config)
        if layer.class_name != "Bidirectional" and not (layer.config is None
                                                        and len(layer.parts) == 2):
            if options.get("go_backwards"):
                _fail(f"{self.name}: layer {where} ({quoted(layer.class_name)}) has "
                      "go_backwards=True: it reads the sequence from the end, but a "
                      "one-direction nn.LSTM, nn.GRU or nn.RNN reads it from the start, so "
                      "gatescope would show something your model does not compute. Save it "
                      "with go_backwards=False, or inside a Bidirectional layer.")
            return [layer.config]
        if layer.config is None:
            return [None, None]
        forward = options.get("layer")
        merge_mode = options.get("merge_mode", "concat")
        if merge_mode != "concat":
            how = {"sum": "adds", "mul": "multiplies", "ave": "averages"}.get(
                str(merge_mode), "returns separately")
            # The recurrent module is the same; only what a head after it reads differs.
            self.remarks.append(
                f"Keras layer {where} {how} its two directions' outputs "
                f"(merge_mode={quoted(str(merge_mode))}) where PyTorch concatenates "
                "them, so a head after it expects that merged output, not PyTorch's.")
        if _options(forward).get("go_backwards"):
            _fail(f"{self.name}: Bidirectional layer {where} wraps a layer with "
                  "go_backwards=True, so its 'forward' direction reads the sequence "
                  "backwards and the two directions are swapped with respect to "
                  "PyTorch's; wrap a layer with go_backwards=False.")
        return [forward, options.get("backward_layer") or forward]

    def _cell(self, config: Any, part: dict[str, Any], where: str) -> _Cell:
        """One direction of a recurrent layer, checked and converted to PyTorch's layout."""
        kind, options, cudnn = self._cell_class(config, where)
        kind, kernel, recurrent, bias = self._cell_weights(part, kind, where)
        hidden, blocks = int(recurrent.shape[0]), cell_info(kind).blocks
        bias_shape = tuple(bias.shape) if bias is not None else None
        if kind == "gru" and bias_shape == (3 * hidden,):
            self._refuse_reset_before(where)
        # Without config a doubled bias in one vector is a CuDNN layer's: fixed activations.
        cudnn = cudnn or (config is None and bias_shape == (2 * blocks * hidden,))
        nonlinearity = ""
        if config is not None and not cudnn:
            nonlinearity = self._check_settings(kind, options, where)
        elif config is None and not cudnn:
            self._check_defaults(kind, where, has_bias=bias is not None)
        # One bias (Keras's LSTM, SimpleRNN), or input and recurrent biases (CuDNN layers in
        # one vector, a reset_after GRU as two rows).
        expected = {"lstm": ((4 * hidden,), (8 * hidden,)), "gru": ((2, 3 * hidden), (6 * hidden,)),
                    "rnn": ((hidden,),)}[kind]
        if bias is not None and bias_shape not in expected:
            _fail(f"{self.name}: layer {where} ({KERAS_CLASSES[kind]}) has a bias of shape "
                  f"{bias_shape}, but one of hidden size {hidden} has "
                  + " or ".join(str(shape) for shape in expected) + "; the file is damaged.")

        order = _gate_order(kind, hidden)
        bias_ih = bias_hh = None
        if bias is not None:
            values = self._array(bias, where, "bias").reshape(-1)
            if values.size == blocks * hidden:
                bias_ih, bias_hh = values[order], np.zeros(values.size)
                self.converted.add("single bias")
            else:
                half = values.size // 2
                bias_ih, bias_hh = values[:half][order], values[half:][order]
                self.converted.add("double bias")
        self.converted.add(kind)
        # Keras multiplies x @ kernel, (in, gates × H); PyTorch W @ x, (gates × H, in).
        return _Cell(kind=kind, hidden=hidden, inputs=int(kernel.shape[0]),
                     weight_ih=self._array(kernel, where, "kernel")[:, order].T,
                     weight_hh=self._array(recurrent, where, "recurrent_kernel")[:, order].T,
                     bias_ih=bias_ih, bias_hh=bias_hh, nonlinearity=nonlinearity)

    def _cell_class(self, config: Any, where: str) -> tuple[str | None, dict, bool]:
        """(the cell a layer's config says, if it has one; the options that set its
        activations; whether it is a CuDNN layer), refusing cells nn.* does not have."""
        class_name, options = _class_of(config), _options(config)
        if class_name == "RNN":
            cell = options.get("cell")
            cell_class = _class_of(cell)
            if cell_class == "StackedRNNCells" or isinstance(cell, list):
                _fail(f"{self.name}: layer {where} is an RNN layer of several stacked cells "
                      "(StackedRNNCells), which gatescope does not read; use one recurrent "
                      "layer per cell (each becomes its own module).")
            if "Peephole" in cell_class:
                self._refuse_peephole(where, cell_class)
            if cell_class not in RECURRENT_CELLS:
                _fail(f"{self.name}: layer {where} is an RNN layer around a "
                      f"{quoted(cell_class or 'custom')} cell; gatescope reads LSTMCell, "
                      "GRUCell and SimpleRNNCell, the cells nn.LSTM, nn.GRU and nn.RNN compute.")
            return RECURRENT_CELLS[cell_class], _options(cell), False
        if config is not None and class_name not in RECURRENT_LAYERS:
            _fail(f"{self.name}: layer {where} is a {quoted(class_name or 'custom')} layer; "
                  "gatescope reads LSTM, GRU, SimpleRNN, CuDNNLSTM and CuDNNGRU layers.")
        return RECURRENT_LAYERS.get(class_name), options, class_name in CUDNN_LAYERS

    def _cell_weights(self, part: dict[str, Any], kind: str | None, where: str):
        """(cell, kernel, recurrent_kernel, bias or None), the cell told by the shapes where
        the config does not say it: a recurrent kernel (H, 4H) is an LSTM's, (H, 3H) a GRU's,
        (H, H) a SimpleRNN's."""
        if any("peephole" in role for role in part):
            self._refuse_peephole(where, "peephole weights")
        unknown = set(part) - {"kernel", "recurrent_kernel", "bias"}
        if unknown or "kernel" not in part or "recurrent_kernel" not in part:
            roles = ", ".join(quoted(role) for role in sorted(part)) or "none"
            _fail(f"{self.name}: layer {where} has the weights {roles}, not a recurrent layer's "
                  "kernel, recurrent_kernel and bias; gatescope reads Keras 2.0 and later.")
        kernel, recurrent, bias = part["kernel"], part["recurrent_kernel"], part.get("bias")
        shapes = (f"kernel {tuple(kernel.shape)}, recurrent_kernel {tuple(recurrent.shape)}"
                  + (f", bias {tuple(bias.shape)}" if bias is not None else ""))
        if len(kernel.shape) != 2 or len(recurrent.shape) != 2 or not recurrent.shape[0]:
            _fail(f"{self.name}: layer {where} has weights of impossible shapes ({shapes}); the "
                  "file is damaged.")
        hidden = int(recurrent.shape[0])
        blocks = recurrent.shape[1] // hidden if recurrent.shape[1] % hidden == 0 else 0
        kind = kind or next((key for key in RECURRENT_CELLS.values()
                             if cell_info(key).blocks == blocks), None)
        if (kind is None or blocks != cell_info(kind).blocks
                or kernel.shape[1] != recurrent.shape[1] or not kernel.shape[0]):
            what = {"lstm": "an LSTM", "gru": "a GRU", "rnn": "a SimpleRNN"}.get(
                kind, "an LSTM, GRU or SimpleRNN")
            _fail(f"{self.name}: layer {where} has weights whose shapes ({shapes}) do not fit "
                  f"{what}; the file is damaged.")
        try:
            check_hidden_size(hidden)
        except LimitError as error:
            _fail(f"{self.name}: layer {where} is over a limit of this app: {error}")
        return kind, kernel, recurrent, bias

    def _check_settings(self, kind: str, options: dict, where: str) -> str:
        """Refuses activations nn.LSTM / nn.GRU / nn.RNN do not compute; the SimpleRNN's
        nonlinearity ("" for LSTM and GRU)."""
        activation = _activation(options.get("activation", "tanh"))
        if kind == "rnn":
            if activation not in ("tanh", "relu"):
                _fail(f"{self.name}: layer {where} (SimpleRNN) uses activation "
                      f"{quoted(activation)}, but nn.RNN offers tanh or relu only; train it "
                      "with activation='tanh' or 'relu'.")
            return activation
        keras_class = KERAS_CLASSES[kind]
        gate = _activation(options.get("recurrent_activation", "sigmoid"))
        if gate != "sigmoid":
            old = " (Keras 2.0-2.2's default)" if gate == "hard_sigmoid" else ""
            _fail(f"{self.name}: layer {where} ({keras_class}) uses recurrent_activation "
                  f"{quoted(gate)}{old} for its gates, but nn.LSTM and nn.GRU use the "
                  "logistic sigmoid, so every gate would differ from what your model "
                  "computes. Train it with recurrent_activation='sigmoid' (the default "
                  "since Keras 2.3) and save it again.")
        if activation != "tanh":
            _fail(f"{self.name}: layer {where} ({keras_class}) uses activation "
                  f"{quoted(activation)}, but nn.{keras_class} uses tanh; train it with "
                  "activation='tanh' and save it again.")
        if kind == "gru" and not options.get("reset_after", False):
            self._refuse_reset_before(where)
        return ""

    def _check_defaults(self, kind: str, where: str, has_bias: bool) -> None:
        """A layer in a weights-only file: its activations are Keras's defaults, if anything.

        Since Keras 2.3 (tf.keras says 2.3.0-tf from TensorFlow 2.2 on; Keras 3) the defaults
        are what PyTorch computes; before, gates used hard_sigmoid by default, so an older file
        without config cannot be trusted.
        """
        keras_class = KERAS_CLASSES[kind]
        if kind == "rnn":
            if where not in self.unrecorded:
                self.unrecorded.append(where)
            return
        version = _version(self.keras_version)
        known_new = version >= (2, 3) or self.keras3_layout
        if not known_new:
            wrote = (f"Keras {quoted(self.keras_version)}" if self.keras_version
                     else "a Keras version it does not name")
            _fail(f"{self.name} holds weights only (written by `model.save_weights` with "
                  f"{wrote}), without the model's configuration, so gatescope cannot tell "
                  f"which activations {keras_class} layer {where} uses: Keras before 2.3 (and "
                  "TensorFlow 1's tf.keras) gave gates hard_sigmoid by default, which nn.LSTM "
                  f"and nn.GRU cannot reproduce. {SAVE_HINT}")
        if kind == "gru" and not has_bias:
            _fail(f"{self.name} does not record the settings of GRU layer {where} (a "
                  "weights-only file or a subclassed model), and the layer has no bias, so "
                  "gatescope cannot tell whether it used reset_after=True (what nn.GRU "
                  f"computes) or False. {SAVE_HINT}")
        if where not in self.assumed:
            self.assumed.append(where)

    def _refuse_reset_before(self, where: str) -> NoReturn:
        _fail(f"{self.name}: layer {where} is a GRU with reset_after=False (the default of "
              "standalone Keras 2 and TensorFlow 1's tf.keras): it applies the reset gate "
              "before the recurrent weights, but nn.GRU applies it after them (Keras's "
              "reset_after=True), so the two compute different things. Train it with "
              "reset_after=True (the default in tf.keras 2 and Keras 3) and save it again.")

    def _refuse_peephole(self, where: str, what: str) -> NoReturn:
        _fail(f"{self.name}: layer {where} is an LSTM with peephole connections "
              f"({quoted(what)}): its gates also read the cell state, which nn.LSTM's do not, "
              "so gatescope cannot show it without changing what it computes.")

    # -- messages ----------------------------------------------------------------------------

    def _no_recurrent_layer(self, layers: list[_Layer]) -> NoReturn:
        seen = [f"{quoted('.'.join(layer.names))} ({quoted(layer.class_name)})"
                if layer.class_name else quoted(".".join(layer.names))
                for layer in layers if layer.class_name not in RECURRENT_LAYERS]
        seen += [entry for entry in self.skipped if entry not in seen]
        listing = ", ".join(seen[:12]) + (f" and {len(seen) - 12} more" if len(seen) > 12 else "")
        _fail(f"{self.name} has no recurrent layer gatescope can read (LSTM, GRU, SimpleRNN, "
              "CuDNNLSTM, CuDNNGRU, or one of them in a Bidirectional layer): "
              + (f"its layers with weights are {listing}." if listing
                 else "it has no layers with weights."))

    def _note(self) -> str:
        said = []
        if "lstm" in self.converted:
            said.append("LSTM gates i, f, c, o kept in order as PyTorch's i, f, g, o")
        if "gru" in self.converted:
            said.append("GRU gates z, r, h reordered to PyTorch's r, z, n")
        if "single bias" in self.converted:
            said.append("each single bias put in bias_ih, with bias_hh zero")
        if "double bias" in self.converted:
            said.append("input and recurrent biases put in bias_ih and bias_hh")
        if "dense" in self.converted:
            said.append("Dense kernels transposed to (out, in)")
        note = f"Converted from a {self.described}" + (": " + "; ".join(said) if said else "")
        sentences = [note + ".", *self.remarks]
        if self.assumed:
            sentences.append(f"The file does not record the activations of "
                             f"{', '.join(self.assumed)} (a weights-only file or a subclassed "
                             "model), so they are taken to be Keras's defaults (tanh, with "
                             "sigmoid gates).")
        if self.unrecorded:
            sentences.append(f"The file does not record the activation of SimpleRNN "
                             f"{', '.join(self.unrecorded)} (Keras's default is tanh).")
        return " ".join(sentences)


@dataclass
class _Cell:
    kind: str
    hidden: int
    inputs: int
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray | None
    bias_hh: np.ndarray | None
    nonlinearity: str

    def describe(self) -> str:
        return (f"{KERAS_CLASSES[self.kind]} with {self.hidden} units and input size "
                f"{self.inputs}" + ("" if self.bias_ih is not None else ", no bias"))


def _gate_order(kind: str, hidden: int) -> np.ndarray:
    """Column indices that put Keras's gate blocks in PyTorch's order.

    Keras's GRU blocks are z (update), r (reset), h (candidate); PyTorch's are r, z, n. LSTM
    blocks are i, f, c, o in both (PyTorch calls c g).
    """
    blocks = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2), "rnn": (0,)}[kind]
    return np.concatenate([np.arange(block * hidden, (block + 1) * hidden) for block in blocks])


def _activation(value: Any) -> str:
    """An activation as a config names it: "tanh", or Keras 3's {"config": "tanh", ...}."""
    if value is None:
        return "linear"
    if isinstance(value, dict):
        inner = value.get("config")
        if isinstance(inner, str):
            return inner
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return inner["name"]
        return str(value.get("class_name", "custom"))
    return str(value)


def _clean_version(value: Any) -> str:
    """A Keras version from the file ("2.2.4-tf"), as plain text: it goes into the note."""
    text = _text(value) if isinstance(value, (str, bytes, np.ndarray)) else ""
    return re.sub(r"[^0-9A-Za-z.+-]", "", text)[:24]


def _version(text: str) -> tuple[int, ...]:
    """(2, 2, 4) for "2.2.4-tf"; () when the text names no version."""
    found = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?", text.strip())
    return tuple(int(part) for part in found.groups() if part is not None) if found else ()


def _guess_class(weights: list[tuple[str, Any]], parts: list[dict[str, Any]]) -> str:
    """A layer's class from its weights' names, in a file without config ("" if unsure)."""
    roles = set().union(*parts) if parts else set()
    names = "/".join(name for name, _ in weights).lower()
    if "recurrent_kernel" in roles:
        if len(parts) == 2:
            return "Bidirectional"
        if "cu_dnnlstm" in names or "cudnnlstm" in names:
            return "CuDNNLSTM"
        if "cu_dnngru" in names or "cudnngru" in names:
            return "CuDNNGRU"
        return ""
    if roles == {"embeddings"}:
        return "Embedding"
    if roles and roles <= {"kernel", "bias"} and len(parts) == 1:
        return "Dense"
    return ""


def _looks_like_dense(group) -> bool:
    """A Keras 3 layer whose `vars` are exactly a 2-D kernel and a bias for its columns."""
    import h5py

    if "vars" not in group:
        return False
    variables = group["vars"]
    if set(variables.keys()) != {"0", "1"}:
        return False
    kernel, bias = variables.get("0", getlink=True), variables.get("1", getlink=True)
    if not (isinstance(kernel, h5py.HardLink) and isinstance(bias, h5py.HardLink)):
        return False
    kernel, bias = variables["0"], variables["1"]
    return (isinstance(kernel, h5py.Dataset) and isinstance(bias, h5py.Dataset)
            and kernel.ndim == 2 and bias.shape == (kernel.shape[1],))


def _clusters(weights: list[tuple[str, Any]]) -> dict[tuple[str, ...], list]:
    """Weights grouped by the layer their names say (`enc/lstm/lstm_cell/kernel:0` -> enc/lstm),
    past a cell level and a Bidirectional's `forward_`/`backward_` level."""
    clusters: dict[tuple[str, ...], list] = {}
    for weight_name, dataset in weights:
        levels = weight_name.split("/")[:-1]
        if levels and _CELL_LEVEL_RE.match(levels[-1]):
            levels = levels[:-1]
        if len(levels) > 1 and levels[-1].startswith(("forward_", "backward_")):
            levels = levels[:-1]
        clusters.setdefault(tuple(levels) or ("",), []).append((weight_name, dataset))
    return clusters


# ---------------------------------------------------------------------------------------------
# HDF5 access that follows hard links only


def _child(group, key: str, name: str):
    """`group[key]`, refusing external and soft links (they could reach files on the server)."""
    import h5py

    levels = [level for level in key.split("/") if level]
    if len(levels) != 1:
        # HDF5 would resolve the levels before the last one itself, links and all.
        if not levels:
            _fail(f"{name} is damaged: it names an entry with an empty name.")
        for level in levels[:-1]:
            group = _group(group, level, name)
        key = levels[-1]
    # `in` and getlink=True read the link itself; neither opens what an external link names.
    link = group.get(key, getlink=True) if key in group else None
    if link is None:
        _fail(f"{name} is damaged: it names {quoted(key)} but does not contain it.")
    if isinstance(link, h5py.ExternalLink):
        _fail(f"{name} links {quoted(key)} to data outside the file, which gatescope never "
              f"follows. {SAVE_HINT}")
    if not isinstance(link, h5py.HardLink):
        _fail(f"{name} reaches {quoted(key)} through a soft link, which gatescope never "
              f"follows (Keras does not write them). {SAVE_HINT}")
    return group[key]


def _group(group, key: str, name: str):
    import h5py

    child = _child(group, key, name)
    if not isinstance(child, h5py.Group):
        _fail(f"{name} is damaged: {quoted(key)} is not a group.")
    return child


def _dataset(group, path: str, name: str):
    """The dataset at a slash-separated path below `group`, walking hard links only."""
    import h5py

    dataset = _child(group, path, name)
    if not isinstance(dataset, h5py.Dataset):
        _fail(f"{name} is damaged: weight {quoted(path)} is not an array.")
    return dataset


def _has_attribute(obj, key: str) -> bool:
    return key in obj.attrs or f"{key}0" in obj.attrs


def _attribute_strings(obj, key: str, name: str) -> list[str]:
    """A list-of-strings attribute as Keras writes it: whole, or (tf.keras, when over HDF5's
    64 KB attribute limit) in chunks `key0`, `key1`, ..."""
    if key in obj.attrs:
        chunks = [obj.attrs[key]]
    else:
        chunks = []
        while f"{key}{len(chunks)}" in obj.attrs:
            chunks.append(obj.attrs[f"{key}{len(chunks)}"])
    values: list[str] = []
    for chunk in chunks:
        items = np.atleast_1d(np.asarray(chunk, dtype=object)).reshape(-1)
        values += [_text(item) for item in items if isinstance(item, (bytes, str, np.str_))]
    if len(values) > 100_000:
        _fail(f"{name} lists {len(values):,} entries in {quoted(key)}; it is not a Keras model.")
    return values


def _vars_name(group) -> str:
    """The user's layer name that recent Keras 3 versions keep on a layer's `vars` group."""
    import h5py

    link = group.get("vars", getlink=True) if "vars" in group else None
    if not isinstance(link, h5py.HardLink):
        return ""
    value = group["vars"].attrs.get("name")
    return _text(value) if value is not None else ""
