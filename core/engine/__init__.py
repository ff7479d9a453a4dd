"""The tracing engine: every state, gate and per-step gradient of an nn.RNN, nn.LSTM or nn.GRU.

    from core.engine import trace, trace_batch, Intervention
    tr = trace(rnn, x, objective)   # x: one sequence (T, input_size)
    tr = trace(rnn, x, objective, initial_state=h0)   # from a given state ((h0, c0) for an LSTM)
    enc, dec = trace_handoff(encoder, decoder, x_enc, x_dec, loss)   # a decoder from an encoder's state
    bt = trace_batch(rnn, xs, lengths)   # xs: a padded batch (B, T, input_size), forward only

- `tracing.py`: `trace()` and the `Trace` it returns (the fused kernels, the probe, the backward);
- `handoff.py`: `trace_handoff()`, an encoder and the decoder it hands its state to, in one
  backward pass;
- `interventions.py`: `Intervention` (clamp units of h, c or a gate) and the clamped forward that
  `trace` runs in the fused kernels;
- `batch.py`: `trace_batch()` and the `BatchTrace` it returns (states and gates of many sequences);
- `scans.py`: the elementwise linear recurrences along time (LSTM c_t and d c_t, GRU's z path);
- `onednn.py`: reading a float32 LSTM's gates and cell state from oneDNN's workspace;
- `analysis.py`: what is measured on traces and modules (gradient decay per step, spectral
  radius, training memory, timings).
"""

from core.engine.batch import BatchTrace, trace_batch
from core.engine.handoff import trace_handoff
from core.engine.interventions import TARGETS, Intervention
from core.engine.tracing import GATE_NAMES, Trace, cell_type_of, trace

__all__ = ["trace", "trace_handoff", "Trace", "trace_batch", "BatchTrace", "Intervention", "TARGETS", "cell_type_of", "GATE_NAMES"]
