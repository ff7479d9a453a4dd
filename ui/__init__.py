"""Streamlit glue shared by the pages: widgets bound to a page's stored choices.

Logic lives in core/ (no Streamlit there); this package holds only what several pages draw
the same way.
"""
