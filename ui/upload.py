"""The Explore page's upload of a user's own weights: the file, which recurrent module in it,
and the vanilla RNN's nonlinearity (which a state_dict does not record).

None of this is in the URL (an upload is not): the widgets keep their values in the session
under `explore_weights_file`, `explore_upload_prefix` and `explore_upload_nonlinearity`.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from core.io.loading import NONLINEARITIES, RecurrentConfig, WeightsInfo, inspect_weights
from core.views.models import Upload
from ui.state import page_key

FILE_KEY = "explore_weights_file"
PREFIX_KEY = "explore_upload_prefix"
NONLINEARITY_KEY = "explore_upload_nonlinearity"
INFO_KEY = page_key("explore", "upload_info")  # (digest, WeightsInfo or None) of the last file


def weights_upload() -> Upload | None:
    """Draws the uploader, a picker of the file's recurrent modules (when it holds several)
    and the nonlinearity choice; returns what `resolve_model` needs, or None with no file.

    A file that cannot be read gets no picker: loading it says why, as the page shows."""
    file = st.file_uploader("state_dict of an nn.RNN / nn.LSTM / nn.GRU",
                            type=["safetensors", "pt", "pth"], key=FILE_KEY)
    data = file.getvalue() if file is not None else None
    info = _inspected(data, file.name) if file is not None else None
    prefix = module_picker(info)
    config = info.modules.get(prefix if prefix is not None else info.prefixes[0]) if info else None
    is_rnn = config is None or not isinstance(config, RecurrentConfig) or config.cell == "rnn"
    nonlinearity = st.radio(
        "Nonlinearity (vanilla RNN only)", NONLINEARITIES, key=NONLINEARITY_KEY,
        horizontal=True, disabled=not is_rnn,  # an LSTM's or GRU's: disabled says it
        help="An nn.RNN's weights do not say whether it was built with tanh (PyTorch's "
             "default) or relu: choose what yours uses. LSTMs and GRUs have no such choice. "
             "A file whose metadata names it (gatescope's own exports) is read as it says.")
    if info is not None and is_rnn and info.nonlinearity is not None:
        said = f"This file says its RNN uses {info.nonlinearity}"
        if info.nonlinearity != nonlinearity:
            st.warning(f"{said}: it is read as {info.nonlinearity}, not {nonlinearity}.")
        else:
            st.caption(f"{said}.")
    if file is None:
        return None
    return Upload(data, file.name, prefix, nonlinearity if is_rnn else None)


def module_picker(info: WeightsInfo | None) -> str | None:
    """A choice of recurrent module when the file holds several (the first by default), each
    named with its kind and sizes; the chosen prefix, or None when there is nothing to pick."""
    if info is None or len(info.prefixes) < 2:
        return None
    if st.session_state.get(PREFIX_KEY) not in info.prefixes:  # another file's module
        st.session_state.pop(PREFIX_KEY, None)
    return st.selectbox(f"Recurrent module ({len(info.prefixes)} in this file)", info.prefixes,
                        index=0, format_func=info.describe, key=PREFIX_KEY,
                        help="The file holds several recurrent modules (an encoder and a "
                             "decoder, say): choose the one to look inside.")


def _inspected(data: bytes, filename: str) -> WeightsInfo | None:
    """What the file holds, read once per file (the page reruns on every click)."""
    digest = hashlib.sha256(data).hexdigest() + filename
    cached = st.session_state.get(INFO_KEY)
    if cached is None or cached[0] != digest:
        try:
            info = inspect_weights(data, filename)
        except ValueError:  # the loader says why when the page resolves the model
            info = None
        st.session_state[INFO_KEY] = cached = (digest, info)
    return cached[1]
