"""Tours: guided presentations through the app's own views, one step at a time.

A tour is a YAML file (content/tours/, format in content/tours/FORMAT.md): each step opens a page
with its URL state, and the tour bar above the page (ui/tours.py) shows its narration, speaker
notes and Previous / Next. A teacher can open a tour file of their own here.
"""

from __future__ import annotations

import streamlit as st

from core.tours import HIDE_PARTS, TOURS_DIR, TourError, shipped_tours
from ui.text import plain
from ui.tours import UPLOADED, tour_card, tour_upload

st.title("Guided tours")
st.markdown("Each tour walks through the app's own views, one step at a time: its page opens "
            "with the step's choices, and a bar above it shows what to look at. Move with "
            "**Next** and **Previous** (or PageDown and PageUp: a presentation clicker sends "
            "those). Every step has a link of its own.")

hide = st.multiselect(
    "Focused view: hide these in the tour's pages", list(HIDE_PARTS),
    format_func=lambda part: f"{part}: {HIDE_PARTS[part]}", key="tours_hide",
    help="Added to every link below as hide=...: hand students one clean view.")

try:
    shipped = shipped_tours()
except TourError as error:  # a shipped file broken by an edit: say which, never a traceback
    st.error(plain("The shipped tours cannot be read: " + "; ".join(error.problems)))
    shipped = {}
sources = {path.stem.split("_", 1)[-1]: path for path in sorted(TOURS_DIR.glob("*.yaml"))}
for tour in shipped.values():
    tour_card(tour, hide, source=sources[tour.name].read_bytes())

st.header("Your own tour")
st.markdown("Write a tour as a YAML file (start from a shipped tour's file, above, or from the "
            "format below) and open it here: every step is checked, and each problem is "
            "named with its step and field. A tour you open stays for this browser session.")
tour_upload()
for tour in st.session_state.get(UPLOADED, {}).values():
    tour_card(tour, hide)

with st.expander("The tour file's format"):
    st.markdown((TOURS_DIR / "FORMAT.md").read_text(encoding="utf-8").split("\n", 1)[1])
