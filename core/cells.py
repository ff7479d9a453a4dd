"""The cell vocabulary: every name, gate, colour and equation of the RNN, LSTM and GRU, once.

Everything else (the engine's gate names, the figures' titles and colours, the pages' labels, the
loader's gate counts) reads this registry, so a word or a colour changes in one place. Gate names
and their order are PyTorch's (torch/nn/modules/rnn.py): the row blocks of `weight_ih_l{k}`.

    from core.cells import CELLS, cell_info
    lstm = cell_info("lstm")
    lstm.display_name         # "LSTM"
    lstm.gate_names           # ("input", "forget", "cell", "output"), PyTorch's row order
    lstm.gate("forget").label # "forget gate f"
    lstm.module               # torch.nn.LSTM

Equations are written once, as HTML for the figures (`<sub>t</sub>`); `plain_equations` gives
the same text without markup for captions and exports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Gate:
    """One gate (or candidate) of a cell, as PyTorch names it."""

    name: str  # PyTorch's name, the trace's key: "forget"
    symbol: str  # the letter in the equations: "f"
    label: str  # on screen: "forget gate f"
    meaning: str  # one line: what a value near 1 (or ±1) does
    signed: bool = False  # a tanh output in (−1, 1) rather than a sigmoid in (0, 1)


@dataclass(frozen=True)
class Cell:
    """One recurrent cell: its PyTorch module, names, gates, colour and equations."""

    key: str  # "rnn" | "lstm" | "gru": in URLs, files and the trace
    module: type[nn.RNNBase]
    display_name: str  # "LSTM"
    long_name: str  # "RNN (vanilla)": where the three stand side by side
    color: str  # one colour per cell on every chart (Okabe-Ito: told apart by every eye)
    dash: str  # and one line style, so that lines differ without their colour too
    gates: tuple[Gate, ...]  # PyTorch's row order of weight_ih_l{k}
    equations: tuple[str, ...]  # PyTorch's equations for one unit, as HTML
    keep_gate: str | None = None  # the gate whose value near 1 keeps the old state
    keep_label: str = ""  # what that gate keeps, on screen
    nonlinearities: tuple[str, ...] = ("tanh",)  # what the cell's state update may use

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.gates)

    @property
    def blocks(self) -> int:
        """Row blocks of weight_ih_l{k} and weight_hh_l{k}: 1 (RNN), 3 (GRU) or 4 (LSTM)."""
        return max(1, len(self.gates))

    def gate(self, name: str) -> Gate:
        for gate in self.gates:
            if gate.name == name:
                return gate
        raise KeyError(f"{self.display_name} has no gate {name!r}; it has "
                       f"{', '.join(self.gate_names) or 'none'}")

    def equations_for(self, nonlinearity: str = "tanh") -> tuple[str, ...]:
        """The equations as HTML, with the vanilla RNN's nonlinearity filled in."""
        return tuple(eq.replace("{nonlinearity}", nonlinearity) for eq in self.equations)

    def text_equations(self, nonlinearity: str = "tanh") -> tuple[str, ...]:
        """The same equations as plain text, subscripts in TeX's way ("W_{hh} h_{t−1}")."""
        return tuple(_SUBSCRIPT.sub(_plain_subscript, eq) for eq in self.equations_for(nonlinearity))


_SUBSCRIPT = re.compile(r"<sub>(.*?)</sub>(?=(\w)?)")


def _plain_subscript(match: re.Match) -> str:
    """"<sub>t−1</sub>" -> "_{t−1}", "<sub>t</sub>" -> "_t"; a space before a juxtaposed factor."""
    text = match.group(1)
    return ("_" + text if len(text) == 1 else "_{" + text + "}") + (" " if match.group(2) else "")


def _affine(gate: str, w: str = "W", b: str = "b") -> str:
    """W_i{gate} x_t + b_i{gate} + W_h{gate} h_{t−1} + b_h{gate}, PyTorch's two-bias form."""
    return (f"{w}<sub>i{gate}</sub>x<sub>t</sub> + {b}<sub>i{gate}</sub> + "
            f"{w}<sub>h{gate}</sub>h<sub>t−1</sub> + {b}<sub>h{gate}</sub>")


RNN = Cell(
    key="rnn", module=nn.RNN, display_name="RNN", long_name="RNN (vanilla)", color="#D55E00", dash="solid",
    gates=(),
    equations=("h<sub>t</sub> = {nonlinearity}(W<sub>ih</sub>x<sub>t</sub> + b<sub>ih</sub> + "
               "W<sub>hh</sub>h<sub>t−1</sub> + b<sub>hh</sub>)",),
    keep_label="no gates: a vanilla RNN<br>rewrites h at every step",
    nonlinearities=("tanh", "relu"),
)

LSTM = Cell(
    key="lstm", module=nn.LSTM, display_name="LSTM", long_name="LSTM", color="#0072B2", dash="dash",
    gates=(
        Gate("input", "i", "input gate i", "near 1 writes the candidate g into the cell state"),
        Gate("forget", "f", "forget gate f", "near 1 keeps the cell state c; near 0 erases it"),
        Gate("cell", "g", "cell candidate g", "the new content offered to the cell state",
             signed=True),
        Gate("output", "o", "output gate o", "near 1 shows the cell state in h"),
    ),
    equations=(
        f"i<sub>t</sub> = σ({_affine('i')})",
        f"f<sub>t</sub> = σ({_affine('f')})",
        f"g<sub>t</sub> = tanh({_affine('g')})",
        f"o<sub>t</sub> = σ({_affine('o')})",
        "c<sub>t</sub> = f<sub>t</sub> ⊙ c<sub>t−1</sub> + i<sub>t</sub> ⊙ g<sub>t</sub>",
        "h<sub>t</sub> = o<sub>t</sub> ⊙ tanh(c<sub>t</sub>)",
    ),
    keep_gate="forget", keep_label="forget gate f (1 = keep c)",
)

GRU = Cell(
    key="gru", module=nn.GRU, display_name="GRU", long_name="GRU", color="#009E73", dash="dot",
    gates=(
        Gate("reset", "r", "reset gate r", "near 0 makes the candidate ignore the old state"),
        # PyTorch: h' = (1 − z)·n + z·h, so z near 1 keeps the old state (Cho et al. 2014's
        # form; Chung et al. write the opposite).
        Gate("update", "z", "update gate z (z≈1 keeps the old h)",
             "near 1 keeps the old state h; near 0 replaces it with the candidate n"),
        Gate("new", "n", "new gate n (candidate)", "the candidate state", signed=True),
    ),
    equations=(
        f"r<sub>t</sub> = σ({_affine('r')})",
        f"z<sub>t</sub> = σ({_affine('z')})",
        "n<sub>t</sub> = tanh(W<sub>in</sub>x<sub>t</sub> + b<sub>in</sub> + r<sub>t</sub> ⊙ "
        "(W<sub>hn</sub>h<sub>t−1</sub> + b<sub>hn</sub>))",
        "h<sub>t</sub> = (1 − z<sub>t</sub>) ⊙ n<sub>t</sub> + z<sub>t</sub> ⊙ h<sub>t−1</sub>",
    ),
    keep_gate="update", keep_label="update gate z (1 = keep h)",
)

#: Every cell, in the order the app lists them (the simplest first).
CELLS: dict[str, Cell] = {cell.key: cell for cell in (RNN, LSTM, GRU)}
#: PyTorch's module class of each cell.
MODULES: dict[str, type[nn.RNNBase]] = {key: cell.module for key, cell in CELLS.items()}
#: The note every GRU view carries: which convention the update gate follows.
GRU_CONVENTION = "PyTorch: z ≈ 1 keeps the old state h<sub>t−1</sub>"


def cell_info(key: str) -> Cell:
    """The registry entry of "rnn", "lstm" or "gru"; ValueError for anything else."""
    try:
        return CELLS[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown cell {key!r}; choose one of {', '.join(CELLS)}") from None


def cell_of_module(module: nn.Module) -> str:
    """"rnn", "lstm" or "gru" for an nn.RNN / nn.LSTM / nn.GRU (subclasses included)."""
    for key, cls in MODULES.items():
        if isinstance(module, cls):
            return key
    raise ValueError(f"gatescope traces torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU modules, "
                     f"not {type(module).__name__}.")

