"""A study's figures: Optuna's own (optimisation history, parameter importances, parallel
coordinates, slices), in the house style, and one of ours: the best score so far of each cell.

Every hyperparameter is a cell's own ("lstm.hidden_size", core/search/space.py), so the
importances, parallel coordinates and slices are drawn for one cell at a time: Optuna reads
them from the trials that have all the parameters asked for, that is the trials of that cell.
"""

from __future__ import annotations

import math

import optuna
import optuna.visualization as ov
import plotly.graph_objects as go

from core.cells import cell_info
from core.figures.style import CELL_COLORS, FONT, cell_dash
from core.search.results import StudyResults
from core.search.space import CELL

#: Complete trials of a cell before its parameter importances mean anything at all.
MIN_TRIALS_FOR_IMPORTANCE = 4
HEIGHT = 440


def _styled(fig: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01, xanchor="left", font=dict(size=16)),
                      font=FONT, height=height, template="plotly_white",
                      margin=dict(l=70, r=30, t=60, b=60))
    return fig


def cell_parameters(results: StudyResults, cell: str) -> list[str]:
    """The cell's own parameter names in the study ("lstm.hidden_size", ...), in the order the
    search suggests them."""
    names: dict[str, None] = {}
    for trial in results.study.get_trials(deepcopy=False):
        names.update((name, None) for name in trial.params if name.startswith(f"{cell}."))
    return list(names)


def complete_trials(results: StudyResults, cell: str) -> int:
    return sum(1 for t in results.trials_of(cell) if t.state == "COMPLETE")


def best_so_far_figure(results: StudyResults) -> go.Figure:
    """Each cell's best held-out score against the trial number: which cell leads, and
    whether more trials still help."""
    fig = go.Figure()
    for cell in CELL_COLORS:
        points = [(t.number, t.value) for t in results.trials_of(cell)
                  if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
        if not points:
            continue
        xs, best, held = [], [], None
        for number, value in points:
            held = value if held is None or results.better(value, held) else held
            xs.append(number)
            best.append(held)
        name = cell_info(cell).display_name
        fig.add_scatter(x=xs, y=best, mode="lines+markers", line_shape="hv", name=name,
                        line=dict(color=CELL_COLORS[cell], width=3, dash=cell_dash(cell)),
                        hovertemplate=f"{name}: best %{{y:.4g}} after trial %{{x}}<extra></extra>")
    fig.update_xaxes(title_text="trial")
    # errors span decades between an untrained trial and a good one; accuracies do not
    fig.update_yaxes(title_text=f"best held-out {results.metric} so far", nticks=6,
                     type="linear" if results.higher_is_better else "log")
    fig.update_layout(legend=dict(orientation="h", y=-0.25, x=0))
    return _styled(fig, "Best of each cell so far")


def history_figure(results: StudyResults) -> go.Figure:
    """Optuna's optimisation history: every complete trial's score and the best so far."""
    fig = ov.plot_optimization_history(results.study, target_name=f"held-out {results.metric}")
    fig.update_layout(legend=dict(orientation="h", y=-0.25, x=0))
    return _styled(fig, "Optimisation history (all cells)")


def cell_study(results: StudyResults, cell: str) -> optuna.Study:
    """An in-memory study of the cell's complete trials only: Optuna's parallel coordinates
    draw every trial of a study, and other cells' trials at "None" on every axis."""
    own = optuna.create_study(direction=results.direction)
    own.add_trials([t for t in results.study.get_trials(deepcopy=False)
                    if t.state.name == "COMPLETE" and t.params.get(CELL) == cell])
    return own


def importance_figure(results: StudyResults, cell: str) -> go.Figure | None:
    """Optuna's parameter importances for one cell; None before it has
    MIN_TRIALS_FOR_IMPORTANCE complete trials."""
    if complete_trials(results, cell) < MIN_TRIALS_FOR_IMPORTANCE:
        return None
    fig = ov.plot_param_importances(cell_study(results, cell),
                                    params=cell_parameters(results, cell),
                                    target_name=f"held-out {results.metric}")
    return _styled(fig, f"Parameter importances, {cell_info(cell).display_name}")


def parallel_figure(results: StudyResults, cell: str) -> go.Figure | None:
    """Optuna's parallel coordinates of one cell's complete trials; None before it has two."""
    if complete_trials(results, cell) < 2:
        return None
    fig = ov.plot_parallel_coordinate(cell_study(results, cell),
                                      params=cell_parameters(results, cell),
                                      target_name=f"held-out {results.metric}")
    # Eight axes share the width (Optuna 5 draws them as one x axis of scatter lines): short
    # names ("learning rate", not "lstm.learning_rate") on two staggered rows, so neighbours
    # do not run into each other on a narrow screen (tilted, their boxes still overlapped).
    fig.update_xaxes(tickangle=0, ticktext=[
        ("<br>" if i % 2 else "") + _short(t) for i, t in enumerate(fig.layout.xaxis.ticktext)])
    return _styled(fig, f"Parallel coordinates, {cell_info(cell).display_name}")


def _short(label: str) -> str:
    """"lstm.learning_rate" -> "learning rate"; other labels as they are."""
    return label.split(".", 1)[-1].replace("_", " ")


def slice_figure(results: StudyResults, cell: str, parameter: str) -> go.Figure | None:
    """Optuna's slice plot of one of the cell's parameters (all of them in one row overlap
    their labels); None before the cell has a complete trial."""
    if complete_trials(results, cell) < 1:
        return None
    fig = ov.plot_slice(cell_study(results, cell), params=[parameter],
                        target_name=f"held-out {results.metric}")
    fig.update_xaxes(title_text=parameter.split(".", 1)[1].replace("_", " "))
    return _styled(fig, f"Slice, {cell_info(cell).display_name}: {parameter.split('.', 1)[1]}")
