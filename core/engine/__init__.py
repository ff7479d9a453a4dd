"""The tracing engine: every state, gate and per-step gradient of an nn.RNN, nn.LSTM or nn.GRU.

    from core.engine import trace, Trace
    tr = trace(rnn, x, objective)   # x: one sequence (T, input_size)

- `tracing.py`: `trace()` and the `Trace` it returns (the fused kernels, the probe, the backward);
- `scans.py`: the elementwise linear recurrences along time (LSTM c_t and d c_t, GRU's z path);
- `onednn.py`: reading a float32 LSTM's gates and cell state from oneDNN's workspace;
- `analysis.py`: what is measured on traces and modules (gradient decay per step, spectral
  radius, training memory, timings).
"""

from core.engine.tracing import GATE_NAMES, Trace, cell_type_of, trace

__all__ = ["trace", "Trace", "cell_type_of", "GATE_NAMES"]
