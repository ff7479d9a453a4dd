"""A user's own model, uploaded: the files (weights, and a vocabulary beside them), which
recurrent module, the vanilla RNN's nonlinearity (which a state_dict does not record), and which
of the file's layers are the embedding and the head.

None of this is in the URL (an upload is not): the widgets keep their values in the session
under keys that start with the page's name (`<page>_weights_file`, `<page>_upload_prefix`, ...),
so each of Compare's columns has its own.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from core.io.loading import (
    NONLINEARITIES,
    WEIGHTS_EXTENSIONS,
    AmbiguousWeightsError,
    quoted,
)
from core.io.user_model import VOCABULARY_EXTENSIONS, UserModel, load_user_model
from core.sharing import BESIDE_UPLOAD_MB
from core.views.models import Upload
from ui.state import page_key
from ui.text import plain

NONE = "(none)"  # the embedding or head picker's "not one of these"



def weights_upload(page: str = "explore", label: str = "Your model: its weights file"
                   ) -> tuple[Upload | None, UserModel | None]:
    """The two uploaders (the weights; beside them, optionally, the vocabulary or gatescope's
    Config file) and the pickers for what is in them; (what `resolve_model` needs, the model as
    found) or (None, None) with no weights.

    One file each, so a new file replaces the one before (and a session holds at most two
    uploads here, core.sharing.session_memory_bound). A file that cannot be read gets no
    pickers (loading it says why, as the page shows) and comes with the last readable upload's
    model, so that the input widgets drawn for that one, and what the visitor typed in them,
    stay while the page shows its last good view."""
    weights = st.file_uploader(
        label, type=list(WEIGHTS_EXTENSIONS), key=f"{page}_weights_file",
        help="PyTorch (.pt, .pth, .ckpt, .bin, .safetensors), Keras (.h5, .hdf5, .keras) or "
             "ONNX weights of a model with an nn.RNN / nn.LSTM / nn.GRU in it.")
    beside = st.file_uploader(
        "Beside it (optional): its vocabulary, or gatescope's Config file",
        type=[extension[1:] for extension in VOCABULARY_EXTENSIONS], key=f"{page}_beside_file",
        max_upload_size=BESIDE_UPLOAD_MB,
        help="A vocabulary: a JSON list of tokens or token → id mapping, or a .txt file with "
             "one token per line. For gatescope's own download, its Config .json restores the "
             "training run (score, steps).")
    if weights is None:
        return None, None
    data, filename = weights.getvalue(), weights.name
    extra = ((beside.getvalue(), beside.name),) if beside is not None else ()
    named = [(data, filename), *extra]
    # One reading of the files, with the choices the visitor has made (the widgets' values,
    # there before they are drawn): it gives the pickers their options and is the model shown.
    found = _inspected(page, named, **{part: st.session_state.get(f"{page}_upload_{part}")
                                        for part in ("prefix", "nonlinearity")},
                       **{part: _picked(page, part) for part in ("embedding", "head")})
    prefix = _module_picker(page, found)
    is_rnn = found is None or found.rnn.__class__.__name__ == "RNN"
    nonlinearity = st.radio(
        "Nonlinearity (vanilla RNN only)", NONLINEARITIES, key=f"{page}_upload_nonlinearity",
        horizontal=True, disabled=not is_rnn,  # an LSTM's or GRU's: disabled says it
        help="An nn.RNN's weights do not say whether it was built with tanh (PyTorch's "
             "default) or relu: choose what yours uses. LSTMs and GRUs have no such choice. "
             "A file that names it (gatescope's own downloads, Keras, ONNX) is read as it says.")
    embedding = _part_picker(page, "embedding", found)
    head = _part_picker(page, "head", found)
    upload = Upload(data, filename, prefix, nonlinearity if is_rnn else None, embedding, head,
                    extra, reading=found)
    last_readable = page_key(page, "last_readable_upload")
    if found is None:  # unreadable (the page says why): its input widgets stay as they were
        return upload, st.session_state.get(last_readable)
    with st.expander("What gatescope found in your files"):
        st.caption(plain(found.note))
    st.session_state[last_readable] = found
    return upload, found


def _picked(page: str, part: str):
    """The embedding or head the visitor picked ("auto" before they have)."""
    chosen = st.session_state.get(f"{page}_upload_{part}", "auto")
    return None if chosen == NONE else chosen


def _module_picker(page: str, found: UserModel | None) -> str | None:
    """A choice of recurrent module when the file holds several (the first by default); the
    chosen prefix, or None when there is nothing to pick."""
    if found is None or len(found.modules) < 2:
        return None
    key = f"{page}_upload_prefix"
    if st.session_state.get(key) not in found.modules:  # another file's module
        st.session_state.pop(key, None)
    return st.selectbox(f"Recurrent module ({len(found.modules)} in this file)", found.modules,
                        index=0, key=key,
                        format_func=dict(zip(found.modules, found.module_labels)).get,
                        help="The file holds several recurrent modules (an encoder and a "
                             "decoder, say): choose the one to look inside.")


def _part_picker(page: str, part: str, found: UserModel | None) -> str | None:
    """The file's layers that fit as the embedding (or head), the one found first by default,
    and "(none)"; "auto" where the file has none to pick from."""
    if found is None or found.task is not None:
        return "auto"
    names = list(found.embeddings if part == "embedding" else found.heads)
    if not names:
        return "auto"
    key = f"{page}_upload_{part}"
    options = [*names, NONE]
    if st.session_state.get(key) not in options:
        st.session_state[key] = found.embedding_name if part == "embedding" else found.head_name
    what = ("turns token ids into the module's input" if part == "embedding"
            else "reads the top layer's output")
    chosen = st.selectbox(f"{part.capitalize()} (the layer that {what})", options, key=key,
                          format_func=lambda n: n if n == NONE else quoted(n, 60).strip("`"))
    return None if chosen == NONE else chosen


def _inspected(page: str, files: list[tuple[bytes, str]], **choices) -> UserModel | None:
    """The model in the files as `choices` make it, read once per files and choices (the page
    reruns on every click), and only the newest reading kept: each holds the model's weights
    (up to 20 MB). Choices left from another file (a module or layer it does not have) give way
    to the automatic ones; None when the files cannot be read at all (loading them says why
    when the page resolves the model)."""
    digest = "|".join(hashlib.sha256(data).hexdigest() + name for data, name in files)
    digest += f"|{sorted(choices.items())}"  # a few small strings, not the files
    kept = page_key(page, "upload_reading")
    if st.session_state.get(kept, (None,))[0] != digest:
        st.session_state.pop(kept, None)  # let the old model go before reading the new one
        st.session_state[kept] = (digest, _read(files, **choices))
    return st.session_state[kept][1]


def _read(files: list[tuple[bytes, str]], prefix=None, **choices) -> UserModel | None:
    # the visitor's choices; their module with the parts found for it (a head picked for
    # another module may not fit this one); then everything automatic (another file's choices)
    for attempt in (dict(prefix=prefix, **choices), dict(prefix=prefix), {}):
        try:
            try:
                return load_user_model(files, **attempt)
            except AmbiguousWeightsError as several:  # the module picker starts at the first
                return load_user_model(files, **{**attempt, "prefix": several.prefixes[0]})
        except ValueError:
            continue
    return None
