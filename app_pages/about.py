"""About gatescope: what it shows and the conventions it uses."""

import streamlit as st

from core import claims
from core.cells import CELLS
from core.content import explanation
from core.figures.style import CELL_RANGE


def gate_list(cell: str) -> str:
    """"*input* i, *forget* f, ... and *output* o", from the cell registry."""
    names = [f"*{gate.name}* {gate.symbol}" for gate in CELLS[cell].gates]
    return ", ".join(names[:-1]) + " and " + names[-1]


def gate_meanings() -> str:
    """One line per gate of the LSTM and the GRU, from the cell registry."""
    return "\n".join(f"- {cell.display_name} {gate.label}: {gate.meaning}"
                     for cell in CELLS.values() for gate in cell.gates)


def equations() -> str:
    """Each cell's equations as text, from the cell registry."""
    return "\n".join(f"- {cell.display_name}: " + "; ".join(f"`{eq}`" for eq in
                     cell.text_equations()) for cell in CELLS.values())


about = explanation("about", "about")
st.title(about.title)
st.markdown(about.filled(lstm_gates=gate_list("lstm"), gru_gates=gate_list("gru"),
                         gate_meanings=gate_meanings(), equations=equations(),
                         lessons=claims.lessons("about"),
                         cell_lo=f"{CELL_RANGE[0]:g}".replace("-", "−"), cell_hi=f"{CELL_RANGE[1]:g}"))
