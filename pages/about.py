"""About gatescope: what it shows and the conventions it uses."""

import streamlit as st

st.title("About gatescope")
st.markdown(
    """
gatescope runs a recurrent network (PyTorch's own `nn.RNN`, `nn.LSTM` or `nn.GRU`) on one
sequence and shows what happens inside it, step by step: the hidden state, the LSTM's cell
state, every gate, and how large the gradient of the loss is at every step.

**Conventions (PyTorch's).** LSTM gates are *input* i, *forget* f, *cell candidate* g and
*output* o, in the row order of `weight_ih_l{k}`. GRU gates are *reset* r, *update* z and *new*
n, with h' = (1 − z) · n + z · h: an update gate near **1 keeps the old state**.

**Colour scales are fixed**: gates from 0 to 1, tanh quantities (h, g, n) from −1 to 1, so the
same colour means the same value in every view, model and cell.

**Gradients** are L2 norms of d loss / d h_t (and d c_t for the LSTM), the total derivative
through every path, on a log scale: a line that falls by orders of magnitude towards the
start of the sequence is a vanishing gradient.

Everything runs on the CPU, offline.
"""
)
