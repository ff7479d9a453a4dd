"""What a user's own model is fed and what its gradients are of: the sidebar's widgets for an
uploaded model that is not gatescope's own (core.views.explore.OwnInput).

Kept in the session under `<page>_own_*` keys, not in the URL (the model is not either).
"""

from __future__ import annotations

import hashlib

import streamlit as st

from core.io.sequences import read_matrix
from core.io.user_model import UserModel
from core.views.explore import OWN_INPUT_LABELS, OwnInput
from core.views.own_model import LOSSES, OBJECTIVE_LABELS, READINGS, Objective, shown_token
from core.sharing import OWN_INPUT_UPLOAD_MB
from ui.state import page_key
from ui.text import plain

MATRIX_EXTENSIONS = ["csv", "tsv", "txt", "npy", "npz"]


def own_model_input(user: UserModel | None, choices, page: str = "explore") -> OwnInput | None:
    """The "Your input" section for an uploaded model; None with no model, and for gatescope's
    own download, which takes its task's inputs (the page switches to that task first)."""
    if user is None:
        return None
    if user.task is not None:
        if user.task != choices.values["task"]:
            choices.set(task=user.task)
            st.rerun()
        return None
    st.header("Your input")
    return own_input_sidebar(user, page)


def own_input_sidebar(user: UserModel, page: str = "explore") -> OwnInput:
    """The input and objective widgets for `user`'s model; what they say."""
    key = f"{page}_own"
    kinds = ["text", "ids"] if user.embedding is not None else ["task", "rows", "file"]
    if user.embedding is not None and user.vocab is None:
        kinds.remove("text")
    typed, options = [f"{key}_text", f"{key}_ids", f"{key}_rows", f"{key}_kind"], {
        f"{key}_kind": kinds}
    give_back(page, typed, options)
    kind = st.radio("Feed it", kinds, format_func=OWN_INPUT_LABELS.get, key=f"{key}_kind")
    text, by, matrix, standardise = "", "characters", None, False
    if kind == "text":
        text = st.text_area("Your text", key=f"{key}_text", max_chars=2000)
        by = st.radio("Tokens are", ["characters", "words"], horizontal=True, key=f"{key}_by")
    elif kind == "ids":
        text = st.text_input("Token ids (space- or comma-separated)", key=f"{key}_ids")
    elif kind == "rows":
        text = st.text_area(f"Numbers: one step per line, {user.rnn.input_size} per step",
                            key=f"{key}_rows", max_chars=2000)
    elif kind == "file":
        matrix = _matrix_upload(user, page)
        standardise = st.checkbox("Standardise each feature (zero mean, unit variance)",
                                  key=f"{key}_standardise",
                                  help="Off: the numbers are fed exactly as in the file.")
    keep(page, typed, options)
    return OwnInput(kind, text, by, matrix, standardise, objective_picker(user, key))


def give_back(page: str, names: list[str], choices: dict[str, list[str]]) -> None:
    """What the visitor typed or chose in the widgets `names`, given back to any that a run let
    go: Streamlit drops the state of a widget that a run does not draw (a model fed token ids
    draws no box for numbers), and resets a choice whose options changed (another model's),
    so opening the first model again asked for its input again. A choice is kept per set of
    its `choices`, and given back where the one it holds is not among them."""
    kept = st.session_state.get(page_key(page, "own kept"), {})
    for name in names:
        options, slot = choices.get(name), _slot(name, choices)
        lost = name not in st.session_state or (
            options is not None and st.session_state[name] not in options)
        if lost and slot in kept:
            st.session_state[name] = kept[slot]


def keep(page: str, names: list[str], choices: dict[str, list[str]]) -> None:
    """Keep the widgets' values for `give_back`, beside them, where no run lets them go."""
    kept = st.session_state.setdefault(page_key(page, "own kept"), {})
    kept.update({_slot(name, choices): st.session_state[name] for name in names
                 if name in st.session_state})


def _slot(name: str, choices: dict[str, list[str]]) -> str:
    return f"{name} among {'|'.join(choices[name])}" if name in choices else name


def objective_picker(user: UserModel, key: str) -> Objective:
    """What the gradients are of, among what this model has (a head, a vocabulary)."""
    kinds = Objective().available(user)
    kind = st.selectbox("Gradients of", kinds, format_func=OBJECTIVE_LABELS.get,
                        key=f"{key}_objective",
                        help="What the gradients (and the input's saliency) are of: the page "
                             "says it in words under the chart.")
    index, step, loss, target, reading = 0, -1, LOSSES[0], "", READINGS[0]
    if user.head is not None:
        reading = st.radio("The head's outputs are", READINGS, horizontal=True,
                           key=f"{key}_reading", index=0 if user.head.out_features > 1 else 1)
    if kind == "loss":
        loss = st.radio("Loss", LOSSES, horizontal=True, key=f"{key}_loss")
    if kind in ("output", "unit") or (kind == "loss" and loss == "cross-entropy"):
        width = user.output_size if kind != "unit" else user.directions * user.rnn.hidden_size
        names = user.class_names if kind != "unit" else None
        index = st.number_input(
            "Unit (reverse direction from " + str(user.rnn.hidden_size) + ")" if kind == "unit"
            else "Class / output", min_value=0, max_value=width - 1, key=f"{key}_index")
        if names:
            st.caption(plain(f"Class {index} is {shown_token(names[index])}."))
    if kind == "loss" and loss == "mse":
        target = st.text_input("Target value(s)", key=f"{key}_target", value="0")
    if kind in ("output", "loss", "unit"):
        step = st.number_input("At step (−1: the last; for a reverse unit, position 0)",
                               min_value=-1, max_value=1999, key=f"{key}_step")
    return Objective(kind, int(index), int(step), loss, target, reading)


def _matrix_upload(user: UserModel, page: str):
    """A CSV / NPY / NPZ upload read for this model's input size, kept once per file; a
    ValueError's message is raised when the page computes (then the last view stays)."""
    file = st.file_uploader("Input file (one column per feature)", type=MATRIX_EXTENSIONS,
                            key=f"{page}_own_file", max_upload_size=OWN_INPUT_UPLOAD_MB)
    if file is None:
        return None
    data = file.getvalue()
    kept = page_key(page, "own_matrix")
    array_key = f"{page}_own_array"
    digest = (hashlib.sha256(data).hexdigest(), file.name, user.rnn.input_size,
              st.session_state.get(array_key))
    cached = st.session_state.get(kept)
    if cached is None or cached[0] != digest:
        try:
            read = read_matrix(data, file.name, user.rnn.input_size,
                               array=st.session_state.get(array_key))
        except ValueError as error:
            read = _Refused(str(error), getattr(error, "arrays", ()))
        st.session_state[kept] = cached = (digest, read)
    read = cached[1]
    if len(getattr(read, "arrays", ())) > 1:
        st.selectbox("Array in the file", read.arrays, key=array_key)
    if not isinstance(read, _Refused):
        st.caption(plain(read.source))
    return read


class _Refused:
    """A file that could not be read: its message, raised when the page computes."""

    def __init__(self, message: str, arrays: tuple[str, ...] = ()):
        self.message = message
        self.arrays = arrays  # an NPZ's arrays: the picker stays to choose another
        self.key = ("refused", message)

    @property
    def values(self):
        raise ValueError(self.message)

    @property
    def columns(self):
        raise ValueError(self.message)
