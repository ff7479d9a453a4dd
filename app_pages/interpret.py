"""Interpretability lab: a trained model measured over many held-out sequences and changed on
purpose: how often its gates saturate, how long its gates keep a state, which units follow a
feature, and what the task's metric does when units are zeroed or clamped."""

from __future__ import annotations

import streamlit as st

from core.cells import CELLS
from core.figures import interpret as figures
from core.interpret import by_distance_table
from core.tasks import TASKS
from core.views import interpret as lab_view
from ui import interpret as ui
from ui.content import explain
from ui.charts import themed
from ui.state import TRAINED, PageChoices
from ui.text import plain

choices = PageChoices(lab_view.InterpretState, "interpret")
values = choices.values
trained = st.session_state.get(TRAINED) or {}
problems = []  # what made a section show its last good view: then the URL is left as it was


def chart(fig, key: str, **kwargs):
    return st.plotly_chart(themed(fig), theme=None, key=key, config=figures.CONFIG, **kwargs)


def shown(section: str, lab: lab_view.Lab, compute):
    """A section's view (or its last good one, under the reason), or None."""
    view, problem = ui.last_good(section, lab, compute)
    ui.show(problem, view is not None)
    problems.append(problem)
    return view


def saturation_section(lab: lab_view.Lab) -> None:
    st.header("Gate saturation")
    ui.threshold_inputs(choices)
    sat = shown("saturation", lab, lambda: lab_view.saturation(lab, values["lo"], values["hi"]))
    if sat is not None:
        event = chart(figures.saturation_figure(sat), "interpret_saturation_chart",
                      on_select="rerun", selection_mode="points")
        if clicked := ui.clicked_unit(event):  # a dot clicked: its unit, in Explore
            ui.open_in_explore(choices.state(), *clicked)
        st.caption(lab_view.saturation_note(sat) + " Click a dot to open its unit in Explore.")
        ui.saturated_table(sat)
    explain("interpret", "saturation")


def memory_section(lab: lab_view.Lab, layer: int, direction: int) -> None:
    st.header("Memory")
    unit, seq = ui.memory_inputs(choices, lab)
    mem = lab_view.memory(lab)
    stats, spans = mem.get(layer, direction), lab_view.held_spans(lab, unit, layer, direction)
    st.markdown(lab_view.memory_note(lab, mem, unit, layer, direction, spans))
    gate, name = CELLS[lab.cell].gate(mem.gate), lab_view.gate_label(lab.cell, mem.gate)
    M, tokens = lab_view.unit_map(lab, seq, unit, layer, direction)
    chart(figures.memory_map_figure(M, tokens, unit, name, direction == 1), "interpret_map")
    chart(figures.tau_figure(stats.tau, unit, name, float(lab.batch.lengths.mean())),
          "interpret_tau")
    chart(figures.spread_figure(stats.sequence_mean[:, unit], spans, float(stats.tau[unit]),
                                unit, name), "interpret_spread")
    st.caption(f"{gate.label}: {gate.meaning}. Sequence {seq}: " + plain(" ".join(tokens)))
    explain("interpret", "memory")


def search_section(lab: lab_view.Lab):
    """The top units for the stated feature; returns the whole ranking (None: none yet)."""
    st.header("Unit search")
    ui.feature_inputs(choices, lab.task)
    state = choices.state()
    found = shown("search", lab, lambda: ui.computed(lab, "rank", state.feature_key,
                                                     lambda: lab_view.search(lab, state)))
    if found is not None:
        feature, ranking = found
        st.caption(plain(f"{feature.name}: {feature.description}"))
        ui.top_table(lab, ranking)
        st.markdown(lab_view.search_note(lab, ranking, feature))
        ui.unit_opener(state, lab, ranking)
    explain("interpret", "search")
    return None if found is None else found[1]


def intervention_section(lab: lab_view.Lab, ranking) -> None:
    st.header("Interventions")
    ui.intervention_inputs(choices, lab)
    state = choices.state()
    done = shown("intervene", lab, lambda: ui.intervened(lab, state, ranking))
    if done is not None:
        said, after = done
        st.markdown(said)
        ui.outcome_view(lab, after)
        if lab.before.by_distance is not None:
            chart(figures.by_distance_figure(by_distance_table(lab.before, after)),
                  "interpret_by_distance")
    explain("interpret", "interventions")


def sweep_section(lab: lab_view.Lab, ranking) -> None:
    st.subheader("Which units matter")
    ui.sweep_inputs(choices, lab)
    state = choices.state()
    measure = lab_view.measure_label(lab.task, state.measure)
    table = ui.on_button("sweep", "Run the sweep", lab, state.sweep_key, lambda: lab_view.sweep(
        lab, state, ranking), "Ablating one unit at a time…")
    if table is not None:
        chart(figures.sweep_figure(table, measure, state.quantity, lab_view.is_share(lab.task)),
              "interpret_sweep")
        st.markdown(lab_view.sweep_note(lab, table, state.measure))
    if ranking is None:
        return
    duel = ui.on_button("duel", "Top-k feature units against k random units", lab,
                        state.sweep_key[2:],
                        lambda: lab_view.duel(lab, state, ranking), "Ablating units together…")
    if duel is not None:
        chart(figures.duel_figure(duel, measure, lab_view.is_share(lab.task)), "interpret_duel")
        st.markdown(lab_view.duel_note(lab, duel, state.measure))


with st.sidebar:
    ui.model_sidebar(choices, trained)
lab, error = ui.last_good_lab(lambda: ui.measured_lab(choices.state(), trained))
st.title("gatescope · Interpretability lab")
if lab is None:  # nothing measured yet in this session (a link to a model that is gone)
    error.show_alone()
    st.stop()
with st.sidebar:
    ui.look_at_sidebar(choices, lab)
st.caption(plain(f"{TASKS[lab.task].title} · {lab.choice.label}"))
ui.show(error, True)
problems.append(error)
st.caption(lab_view.describe_batches(lab))
if lab.note:
    st.info(lab.note)
if lab.gated:
    saturation_section(lab)
    memory_section(lab, values["layer"], values["direction"])
else:
    st.info(lab_view.NO_GATES)
ranking = search_section(lab)
intervention_section(lab, ranking)
sweep_section(lab, ranking)
if not any(p is not None and not p.waiting for p in problems):  # waiting: the link says so too
    choices.publish(choices.state())
