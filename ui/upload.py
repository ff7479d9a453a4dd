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
from core.views.models import Upload
from ui.state import page_key
from ui.text import plain

NONE = "(none)"  # the embedding or head picker's "not one of these"


def weights_upload(page: str = "explore", label: str = "Your model: weights file, and its "
                   "vocabulary if it has one") -> tuple[Upload | None, UserModel | None]:
    """The uploader and the pickers for what is in the files; (what `resolve_model` needs,
    the model as found) or (None, None) with no file.

    A file that cannot be read gets no pickers (loading it says why, as the page shows) and
    comes with the last readable upload's model, so that the input widgets drawn for that one,
    and what the visitor typed in them, stay while the page shows its last good view."""
    files = st.file_uploader(
        label, type=[*WEIGHTS_EXTENSIONS, *(e[1:] for e in VOCABULARY_EXTENSIONS)],
        accept_multiple_files=True, key=f"{page}_weights_file",
        help="PyTorch (.pt, .pth, .ckpt, .bin, .safetensors), Keras (.h5, .keras) or ONNX "
             "weights of a model with an nn.RNN / nn.LSTM / nn.GRU, and optionally its "
             "vocabulary (.json list or token → id mapping, or .txt with one token per line).")
    if not files:
        return None, None
    named = _newest_of_each_kind(files)
    data, filename = named[0]
    extra = tuple(named[1:])
    found = _inspected(page, named, None)
    prefix = _module_picker(page, found)
    if prefix is not None:
        found = _inspected(page, named, prefix)
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
                    extra)
    last_readable = page_key(page, "last_readable_upload")
    if found is None:  # unreadable (the page says why): its input widgets stay as they were
        return upload, st.session_state.get(last_readable)
    # what is traced: the model as the visitor's choices make it
    found = _inspected(page, named, prefix, nonlinearity=upload.nonlinearity,
                       embedding=embedding, head=head) or found
    with st.expander("What gatescope found in your files"):
        st.caption(plain(found.note))
    st.session_state[last_readable] = found
    return upload, found


def _is_weights(filename: str) -> bool:
    return "." in filename and filename.rsplit(".", 1)[-1].lower() in WEIGHTS_EXTENSIONS


def _newest_of_each_kind(files) -> list[tuple[bytes, str]]:
    """[(weights), (vocabulary)?] as (bytes, name): the newest file of each kind. A file
    dropped on the uploader joins the ones already there (it takes several, for a vocabulary),
    so a second weights file means "this one now", not a model of two files; the older ones
    are said to be ignored until the visitor removes them."""
    weights = [file for file in files if _is_weights(file.name)]
    others = [file for file in files if not _is_weights(file.name)]
    newest = [kind[-1] for kind in (weights, others) if kind]  # files come in upload order
    ignored = [file.name for file in files if file not in newest]
    if ignored:
        st.caption(plain("Using the newest of each kind: " + ", ".join(f.name for f in newest)
                         + ". Ignored until you remove them: " + ", ".join(ignored) + "."))
    return [(file.getvalue(), file.name) for file in newest]


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


#: How many readings of the files a session keeps: the pickers' (every part found
#: automatically) and the one the visitor's choices make. Each holds the model's weights (up to
#: 20 MB), so a session keeps no more.
KEPT_READINGS = 2


def _inspected(page: str, files: list[tuple[bytes, str]], prefix: str | None,
               **choices) -> UserModel | None:
    """What the files hold, with the parts `choices` names (else every part found
    automatically), read once per files and choices (the page reruns on every click); None
    when they cannot be read (loading them says why when the page resolves the model)."""
    defaults = {"nonlinearity": None, "embedding": "auto", "head": "auto"}
    choices = {k: v for k, v in choices.items() if v != defaults[k]}  # same model, one reading
    digest = "|".join(hashlib.sha256(data).hexdigest() + name for data, name in files)
    digest += f"|{prefix}|{sorted(choices.items())}"  # a few small strings, not the files
    kept = st.session_state.setdefault(page_key(page, "upload_info"), {})
    if digest not in kept:
        try:
            try:
                found = load_user_model(files, prefix=prefix, **choices)
            except AmbiguousWeightsError as several:  # the picker starts at the first
                found = load_user_model(files, prefix=several.prefixes[0], **choices)
        except ValueError:
            found = None
        while len(kept) >= KEPT_READINGS:
            kept.pop(next(iter(kept)))  # the oldest reading goes first
        kept[digest] = found
    return kept[digest]
