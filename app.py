"""gatescope: see inside recurrent neural networks. Run with `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="gatescope", page_icon="🔬", layout="wide")
st.title("gatescope")
st.write("See inside recurrent neural networks, timestep by timestep.")
