"""The cell diagram and PyTorch's equations, with one unit's numbers at the cursor's step.

One subplot: the diagram above (nodes coloured by their value, arrows between them), the
equations below, from the registry (core/cells.py). All of it is TWO traces: the arrows
(static) and the nodes-and-numbers trace, the only one frames update (`CellPanel.at`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.cells import GRU_CONVENTION, Gate, cell_info
from core.engine import Trace
from core.figures.style import (
    FONT, GATE_RANGE, GATE_SCALE, READABLE_PRE_ACTIVATION, SIGNED_RANGE, SIGNED_SCALE,
    TITLE_FONT, _atanh, _hex_series, _nums, cell_range, pre_activation_texts, text_on,
)

NODE_SIZE = 38  # px, the diagram's node circles
NODE_FONT = 11  # px, the numbers in them
#: The x_t node's word: its characters' width (in em: "paintings" measured 0.45 in the page,
#: with a margin), and the smallest size it is shrunk to so that the input's longest word fits
#: the circle. A word longer still runs past the circle's edge: cut to the circle, "paintings"
#: read "paintin", another word.
WORD_CHAR_WIDTH = 0.5
WORD_MIN_FONT = 9.0
ARROW_COLOR = "#9aa0a6"
#: A subscript's character, in characters of the text around it (see `visible_length`).
SUBSCRIPT_SHARE = 0.7


@dataclass(frozen=True)
class Node:
    key: str  # what value it shows (see _node_values)
    label: str
    x: float
    y: float
    kind: str  # "gate" (0..1), "signed" (-1..1) or "cell" (the cell state's colour range)
    label_above: bool = False  # the name over the node, where another node is just below it


DIAGRAMS: dict[str, tuple[list[Node], list[tuple[str, str]]]] = {
    "lstm": (
        [
            Node("c_prev", "c<sub>t−1</sub>", 0.0, 4.0, "cell"),
            Node("fc", "f⊙c", 3.0, 4.0, "cell"),
            Node("c", "c<sub>t</sub>", 6.0, 4.0, "cell"),
            Node("h_prev", "h<sub>t−1</sub>", 0.0, 0.0, "signed"),
            # h_{t-1} is 1.3 below: x_t's name under it ran into h_{t-1}'s number on a stage
            # (and i⊙g's into g's circle): their names go over them
            Node("x", "x<sub>t</sub>", 0.0, 1.3, "signed", label_above=True),
            Node("forget", "f", 1.6, 2.6, "gate"),
            Node("input", "i", 3.0, 1.4, "gate"),
            Node("cell", "g", 4.6, 1.4, "signed"),
            Node("ig", "i⊙g", 4.6, 2.9, "cell", label_above=True),  # g is 1.5 below
            Node("output", "o", 6.2, 1.4, "gate"),
            Node("h", "h<sub>t</sub>", 7.5, 0.6, "signed"),
        ],
        [("c_prev", "fc"), ("forget", "fc"), ("fc", "c"), ("input", "ig"), ("cell", "ig"),
         ("ig", "c"), ("h_prev", "forget"), ("h_prev", "input"), ("h_prev", "cell"),
         ("h_prev", "output"), ("x", "forget"), ("x", "input"), ("x", "cell"), ("x", "output"),
         ("c", "h"), ("output", "h")],
    ),
    "gru": (
        [
            Node("h_prev", "h<sub>t−1</sub>", 0.0, 4.0, "signed"),
            Node("zh", "z⊙h<sub>t−1</sub>", 3.5, 4.0, "signed"),
            Node("h", "h<sub>t</sub>", 7.0, 3.0, "signed"),
            Node("x", "x<sub>t</sub>", 0.0, 0.3, "signed"),
            Node("reset", "r", 1.6, 1.4, "gate"),
            Node("update", "z", 2.6, 2.6, "gate"),
            Node("new", "n", 3.8, 1.0, "signed"),
            Node("zn", "(1−z)⊙n", 5.4, 1.8, "signed"),
        ],
        [("h_prev", "zh"), ("update", "zh"), ("zh", "h"), ("update", "zn"), ("new", "zn"),
         ("zn", "h"), ("h_prev", "reset"), ("h_prev", "update"), ("x", "reset"),
         ("x", "update"), ("x", "new"), ("reset", "new"), ("h_prev", "new")],
    ),
    "rnn": (
        [
            Node("h_prev", "h<sub>t−1</sub>", 0.0, 3.0, "signed"),
            Node("x", "x<sub>t</sub>", 0.0, 0.5, "signed"),
            Node("pre", "a (pre-act.)", 3.0, 1.8, "signed"),
            Node("h", "h<sub>t</sub>", 6.0, 1.8, "signed"),
        ],
        # no arrow from h_t back to h_{t−1}: that node is the previous step's h already
        [("h_prev", "pre"), ("x", "pre"), ("pre", "h")],
    ),
}


# ---------------------------------------------------------------------------------------------
# Values: what every node and equation shows at every step


def _previous(v: np.ndarray, reverse: bool) -> np.ndarray:
    """The value at the step before, in the direction's order (0 before the first step)."""
    zero = np.zeros(1, np.float32)
    return np.concatenate([v[1:], zero]) if reverse else np.concatenate([zero, v[:-1]])


def _node_values(tr: Trace, layer: int, direction: int, unit: int, x_signal: np.ndarray,
                 nonlinearity: str = "tanh") -> dict[str, np.ndarray]:
    """Per-step (T,) values of every diagram node for one unit."""
    h = tr.hidden[layer, direction, :, unit].astype(np.float32)
    T = h.shape[0]
    reverse = direction == 1
    # h_{t-1} is the state this step started from: the previous step in the direction's order.
    h_prev = _previous(h, reverse)
    vals = {"h": h, "h_prev": h_prev, "x": x_signal.astype(np.float32)}
    g = {k: v[layer, direction, :, unit].astype(np.float32) for k, v in tr.gates.items()}
    vals.update(g)
    if tr.cell_type == "lstm":
        c = tr.cell[layer, direction, :, unit].astype(np.float32)
        c_prev = _previous(c, reverse)
        vals.update(c=c, c_prev=c_prev, fc=g["forget"] * c_prev, ig=g["input"] * g["cell"])
    elif tr.cell_type == "gru":
        vals.update(zh=g["update"] * h_prev, zn=(1 - g["update"]) * g["new"])
    else:  # the colour of a (pre-act.): read back from h, as far as h tells it
        bound = READABLE_PRE_ACTIVATION["tanh"]
        vals["pre"] = (h if nonlinearity == "relu" else
                       np.clip(_atanh(h.astype(np.float64)), -bound, bound).astype(np.float32))
    assert all(v.shape == (T,) for v in vals.values())
    return vals


def equations(cell: str, nonlinearity: str = "tanh") -> list[str]:
    """PyTorch's equations for one unit (see the docs of torch.nn.LSTM / GRU / RNN), from the
    registry."""
    return list(cell_info(cell).equations_for(nonlinearity))


def _gate_columns(v: dict[str, np.ndarray], gates: tuple[Gate, ...]) -> list[list[str]]:
    """`= σ(pre) = value` (tanh for a signed gate) at every step, one column per gate; the
    pre-activation is recovered from the gate's value."""
    columns = []
    for gate in gates:
        fn = "tanh" if gate.signed else "σ"
        pre = pre_activation_texts(v[gate.name], fn)
        columns.append([f"= {fn}({a}) = <b>{b}</b>" for a, b in zip(pre, _nums(v[gate.name]))])
    return columns


def _factor_texts(factors: np.ndarray, others: np.ndarray) -> list[str]:
    """Each of `factors` (a gate in 0 ... 1) with the decimals that keep its product with the
    value beside it (`others`) right to the 0.005 the result is rounded to: 2 beside a value up
    to 1, more beside a larger one. A cell state of 27.35 kept by f = 0.9967 read
    "1.00·27.35 + … = 26.70", which a student's arithmetic cannot reproduce."""
    with np.errstate(divide="ignore"):
        beside = np.maximum(np.abs(np.asarray(others, dtype=np.float64)), 1.0)
        places = np.ceil(np.log10(100 * beside) - 1e-9)
    places = np.clip(np.nan_to_num(places, nan=2.0, posinf=6.0), 2, 6).astype(int)
    texts = _nums(factors)
    return [text if k == 2 or not np.isfinite(x) else f"{x:.{k}f}".replace("-", "−")
            for x, k, text in zip(np.asarray(factors, dtype=np.float64).tolist(), places, texts)]


def _equation_numbers(cell: str, v: dict[str, np.ndarray], nonlinearity: str) -> list[list[str]]:
    """The right-hand sides of `equations` with the unit's numbers filled in, for every step."""
    num = {k: _nums(a) for k, a in v.items()}
    par = {k: _nums(a, parenthesise_negative=True) for k, a in v.items()}
    if cell == "lstm":
        o = num["output"]
        f, i = _factor_texts(v["forget"], v["c_prev"]), _factor_texts(v["input"], v["cell"])
        columns = _gate_columns(v, cell_info(cell).gates) + [
            [f"= {a}·{b} + {c}·{d} = <b>{e}</b>"
             for a, b, c, d, e in zip(f, par["c_prev"], i, par["cell"], num["c"])],
            [f"= {a}·tanh({b}) = <b>{c}</b>" for a, b, c in zip(o, num["c"], num["h"])],
        ]
    elif cell == "gru":
        z = num["update"]
        columns = _gate_columns(v, cell_info(cell).gates) + [
            [f"= (1 − {a})·{b} + {a}·{c} = <b>{d}</b>"
             for a, b, c, d in zip(z, par["new"], par["h_prev"], num["h"])],
        ]
    else:
        fn = "relu" if nonlinearity == "relu" else "tanh"
        columns = [[f"= {fn}({a}) = <b>{b}</b>"
                    for a, b in zip(pre_activation_texts(v["h"], fn), num["h"])]]
    return [list(row) for row in zip(*columns)]


# ---------------------------------------------------------------------------------------------
# The panel: static arrows and text, one animated trace


@dataclass
class CellPanel:
    """The diagram-and-equations subplot of one unit: its traces (the arrows, static, then
    the nodes and numbers, animated), its static text, its axis ranges, and the animated
    trace's update at every step (`at`)."""

    traces: list[dict]
    annotations: list[dict]
    x_range: list[float]
    y_range: list[float]
    colors_at: list[tuple[str, ...]]  # step -> node colours
    texts_at: list[tuple[str, ...]]  # step -> node numbers (or the word at x_t)
    numbers: list[list[str]]  # step -> equations' right-hand sides

    def at(self, t: int) -> dict:
        """Everything in the panel that changes with t: node colours and numbers."""
        clear = ["rgba(0,0,0,0)"] * len(self.numbers[t])
        on_page = [FONT["color"]] * len(self.numbers[t])  # the equations', on the page
        return {"marker": {"color": [*self.colors_at[t], *clear]},
                "text": [*self.texts_at[t], *self.numbers[t]],
                # each number in the colour that reads on its circle's fill (contrast >= 4.5)
                "textfont": {"color": [*map(text_on, self.colors_at[t]), *on_page]}}


def cell_panel(tr: Trace, *, layer: int, direction: int, unit: int, t0: int,
               tokens: list[str] | None, x_signal: np.ndarray, nonlinearity: str,
               axes: tuple[str, str], scale: float = 1.0, line_chars: float | None = None
               ) -> CellPanel:
    """The panel of `unit` on the subplot `axes` ("x2", "y2"). `tokens`: the words, shown on
    the x_t node, or None when the input is numbers (then x_t shows `x_signal`). `scale`
    grows the circles and arrowheads (a stage figure's text is larger: its numbers must fit).
    `line_chars`: the characters a line of the column holds (see `wrapped`); an equation or
    a column of numbers that is longer goes on two lines (None: every one on one line)."""
    cell = tr.cell_type
    nodes, edges = DIAGRAMS[cell]
    nodes = _as_seen(nodes, layer, direction, unit, words=tokens is not None)
    if layer > 0:  # a layer above the first reads the layer below's h, not the input
        tokens, x_signal = None, tr.hidden[layer - 1, 0, :, unit]
    values = _node_values(tr, layer, direction, unit, x_signal, nonlinearity)
    colors_at, texts_at = _node_columns(nodes, values, tokens, cell_range(tr.cell), nonlinearity)
    eqs = [_in_direction(eq, direction) for eq in equations(cell, nonlinearity)]
    numbers = _equation_numbers(cell, values, nonlinearity)
    if line_chars is not None:
        eqs = [wrapped([eq], line_chars, " + ")[0] for eq in eqs]
        columns = [wrapped(list(column), line_chars, " = ", last=True) for column in zip(*numbers)]
        numbers = [list(row) for row in zip(*columns)]
    eq_y = _equation_heights(nodes, len(eqs), scale)
    annotations = _panel_text(nodes, eqs, eq_y, unit, cell, axes, direction)
    xs, ys = [n.x for n in nodes], [n.y for n in nodes]
    node_px = round(NODE_SIZE * scale)
    panel = CellPanel([_arrows(nodes, edges, axes, node_px)], annotations,
                      [min(xs) - 0.8, max(xs) + 0.8], [eq_y[-1] - 1.6, max(ys) + 0.8],
                      colors_at, texts_at, numbers)
    sizes = [word_font(tokens) if n.key == "x" and tokens is not None else NODE_FONT
             for n in nodes]
    panel.traces.append(_nodes_trace(nodes, eq_y, panel.at(t0), axes, node_px, sizes))
    return panel


def word_font(words: Sequence[str]) -> float:
    """The x_t node's font size (px at scale 1, like `NODE_FONT`) for an input of `words`: one
    size for every step, at which the longest word fits the circle, and at least
    `WORD_MIN_FONT`."""
    longest = max((len(word) for word in words), default=1)
    return round(max(WORD_MIN_FONT, min(NODE_FONT, NODE_SIZE / (WORD_CHAR_WIDTH * longest))), 1)


def visible_length(html: str) -> float:
    """How many characters a line of the figures' HTML shows, in characters of its text: tags
    count nothing, a subscript's characters SUBSCRIPT_SHARE each."""
    length, sub = 0.0, False
    for part in re.split(r"(<[^>]*>)", html):
        if part.startswith("<"):
            sub = {"<sub>": True, "</sub>": False}.get(part, sub)
        else:
            length += len(part) * (SUBSCRIPT_SHARE if sub else 1.0)
    return length


def wrapped(texts: list[str], line_chars: float, at: str, last: bool = False) -> list[str]:
    """`texts` (one equation, or one equation's numbers at every step) on two lines where the
    longest is longer than `line_chars`: each broken before its `at` nearest the middle (`last`:
    before its last `at`), the second line indented. All or none, so that the numbers do not
    jump between one and two lines as the cursor moves. (The texts of a column share their
    tags, so the longest in characters is the longest as shown: a frame's worth of numbers is
    measured once, not once a step.)"""
    if visible_length(max(texts, key=len)) <= line_chars:
        return texts

    def broken(text: str) -> str:
        if last:
            cut = text.rfind(at)
        else:
            middle = visible_length(text) / 2
            cut = min((m.start() for m in re.finditer(re.escape(at), text)), default=-1,
                      key=lambda i: abs(visible_length(text[:i]) - middle))
        if cut < 0:
            return text
        return text[:cut] + "<br>\u2003" + text[cut + 1:]  # an em space: plotly.js keeps it

    return [broken(text) for text in texts]


def _in_direction(text: str, direction: int) -> str:
    """A reverse direction runs from the end: its previous state is the one at step t+1."""
    return text.replace("t−1", "t+1") if direction == 1 else text


def _as_seen(nodes: list[Node], layer: int, direction: int, unit: int, words: bool
             ) -> list[Node]:
    """The nodes labelled for what they show here: t+1 for the previous state of a reverse
    direction; x_t's feature: the word, input feature 0, or (in a layer above the first) the
    layer below's h, which is this layer's input feature `unit` (its forward half)."""
    def label(node: Node) -> str:
        if node.key != "x" or (layer == 0 and words):
            return _in_direction(node.label, direction)
        return f"x<sub>t</sub>[{unit if layer > 0 else 0}]"
    return [dataclasses.replace(n, label=label(n)) for n in nodes]


def _arrows(nodes: list[Node], edges: list[tuple[str, str]], axes: tuple[str, str],
            node_px: int = NODE_SIZE) -> dict:
    """The arrows as one static trace, drawn under the nodes: centre-to-centre lines with an
    arrowhead marker turned along its line and backed off (in pixels) to the target's rim.
    Sixteen arrow annotations cost plotly.js ~45 ms of layout on every new figure."""
    pos = {n.key: (n.x, n.y) for n in nodes}
    edge_x = [v for a, b in edges for v in (pos[a][0], pos[b][0], None)]
    edge_y = [v for a, b in edges for v in (pos[a][1], pos[b][1], None)]
    return dict(
        type="scatter", x=edge_x, y=edge_y, mode="lines+markers",
        line=dict(color=ARROW_COLOR, width=1.5),
        marker=dict(symbol="arrow", angleref="previous",
                    size=[0, round(11 * node_px / NODE_SIZE), 0] * len(edges),
                    standoff=node_px // 2 + 2, color=ARROW_COLOR, opacity=1),
        hoverinfo="skip", showlegend=False, xaxis=axes[0], yaxis=axes[1])


def _node_columns(nodes: list[Node], values: dict[str, np.ndarray], tokens: list[str] | None,
                  c_range: tuple[float, float], nonlinearity: str = "tanh"
                  ) -> tuple[list[tuple], list[tuple]]:
    """Every node's colour and label at every step (step -> per node), formatted once per
    node, not per frame. The RNN's a (pre-act.) reads as its equation does."""
    T = len(values["h"])

    def column(n: Node) -> tuple[list[str], list[str]]:
        if n.key == "x" and tokens is not None:  # the x_t node shows the word, not a number
            return ["#ffffff"] * T, list(tokens)
        lo, hi = {"gate": GATE_RANGE, "cell": c_range}.get(n.kind, SIGNED_RANGE)
        scale = GATE_SCALE if n.kind == "gate" else SIGNED_SCALE
        texts = (pre_activation_texts(values["h"], "relu" if nonlinearity == "relu" else "tanh")
                 if n.key == "pre" else _nums(values[n.key]))
        return _hex_series(scale, values[n.key], lo, hi), texts

    columns = [column(n) for n in nodes]
    return (list(zip(*(colors for colors, _ in columns))),
            list(zip(*(texts for _, texts in columns))))


def _equation_heights(nodes: list[Node], n_eq: int, scale: float = 1.0) -> list[float]:
    """The y of each equation, under the diagram (farther under it when the text is larger:
    the lowest node's label hangs below it)."""
    eq_top = min(n.y for n in nodes) - 1.5 * scale
    return [eq_top - 1.15 * k for k in range(n_eq)]


def _panel_text(nodes: list[Node], eqs: list[str], eq_y: list[float], unit: int, cell: str,
                axes: tuple[str, str], direction: int) -> list[dict]:
    """Node names, the equations and their heading (and the GRU's convention) as annotations,
    like every static text in these figures. (As text traces they cost nothing to lay out on a
    new figure but are drawn again on every animation frame, because a frame lists every
    trace: measured, 37 -> 27 frames/s at T = 1000.)"""
    dx, dy = axes
    left = min(n.x for n in nodes) - 0.7
    annotations = [dict(x=n.x, y=n.y, xref=dx, yref=dy, text=n.label, showarrow=False,
                        yshift=31 if n.label_above else -31, font=dict(size=13, color="#333"))
                   for n in nodes]
    annotations.append(dict(x=left, y=eq_y[0] + 0.75, xref=dx, yref=dy, showarrow=False,
                            xanchor="left", text=f"PyTorch's equations, unit {unit} at step t",
                            font=TITLE_FONT))
    # an equation on two lines keeps its second where a line of its own would be, clear of
    # its numbers below (half a line up; a stage grows the shift with its text, `staged`)
    annotations += [dict(x=left, y=y, xref=dx, yref=dy, text=eq, showarrow=False,
                         xanchor="left", align="left", font=dict(size=13),
                         **({"yshift": 8} if "<br>" in eq else {}))
                    for y, eq in zip(eq_y, eqs)]
    if cell == "gru":
        annotations.append(dict(x=left, y=eq_y[-1] - 1.0, xref=dx, yref=dy, showarrow=False,
                                xanchor="left", font=dict(size=12, color="#555"),
                                text=_in_direction(GRU_CONVENTION, direction)))
    return annotations


def _nodes_trace(nodes: list[Node], eq_y: list[float], first: dict, axes: tuple[str, str],
                 node_px: int = NODE_SIZE, sizes: Sequence[float] | None = None) -> dict:
    """The animated trace: the nodes (coloured circles with their number, in font `sizes`,
    NODE_FONT by default) and, as invisible markers with text, the equations' numbers right of
    each equation."""
    n, n_eq = len(nodes), len(eq_y)
    xs, ys = [node.x for node in nodes], [node.y for node in nodes]
    return dict(
        type="scatter", x=xs + [min(xs) - 0.55] * n_eq, y=ys + [y - 0.5 for y in eq_y],
        mode="markers+text",
        # opacity 1: plotly.js draws markers with a size array ("bubbles") at 0.7 by default,
        # which would show the arrows running under the nodes
        marker=dict(size=[node_px] * n + [1] * n_eq, color=first["marker"]["color"],
                    opacity=1, line=dict(width=[1.5] * n + [0] * n_eq, color="#444")),
        text=first["text"], textposition=["middle center"] * n + ["middle right"] * n_eq,
        textfont=dict(size=[*(sizes or [NODE_FONT] * n), *[13] * n_eq],
                      color=first["textfont"]["color"]),
        hoverinfo="skip",
        showlegend=False, xaxis=axes[0], yaxis=axes[1])
