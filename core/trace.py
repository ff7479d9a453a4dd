"""`from core.trace import trace, Trace` keeps working for scripts and outside checks: the
engine lives in core/engine/ (see its package docstring)."""

from core.engine.tracing import GATE_NAMES, Trace, cell_type_of, trace

__all__ = ["trace", "Trace", "cell_type_of", "GATE_NAMES"]
