"""What each page computes, without Streamlit: `explore.py`, `compare.py`, `lab.py` (the
Gradient lab), `train.py`; and `state.py`, the one mechanism that keeps every page's choices in
the URL."""
