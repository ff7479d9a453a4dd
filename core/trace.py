"""`from core.trace import trace, trace_handoff, Trace, trace_batch, Intervention` keeps working for
scripts and outside checks: the engine lives in core/engine/ (see its package docstring)."""

from core.engine.batch import BatchTrace, trace_batch
from core.engine.handoff import trace_handoff
from core.engine.interventions import TARGETS, Intervention
from core.engine.tracing import GATE_NAMES, Trace, cell_type_of, trace

__all__ = [
    "trace",
    "trace_handoff",
    "Trace",
    "trace_batch",
    "BatchTrace",
    "Intervention",
    "TARGETS",
    "cell_type_of",
    "GATE_NAMES",
]
