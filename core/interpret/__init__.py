"""The interpretability lab's measurements, over many held-out sequences and by changing the
network (no Streamlit here; the lab page draws what these return).

- `heldout.py`: a task's held-out batch for a model (features, lengths, tokens, per-sequence
  facts such as agreement's subject position), and agreement's sentences by exact distance;
- `saturation.py`: how often each gate unit is nearly closed or open (Karpathy et al. 2015);
- `memory.py`: products of the keep gate (LSTM forget f, GRU update z) as a map, and each unit's
  time constant τ = −1 / ln(mean keep gate);
- `features.py`: per-step features (built-in per task, word lists, patterns, quotes);
- `search.py`: units ranked by how well h or c follows a feature (correlation, one-unit probe);
- `ablation.py`: the metric before and after interventions, ablation sweeps, top-k feature units
  against k random units.

    from core.interpret import heldout_batch, trace_heldout, gate_saturation, memory_stats
    batch = heldout_batch("agreement", model, n=1000)
    bt = trace_heldout(model, batch)       # trace_batch, subnormals flushed for the call
    gate_saturation(bt).table(); memory_stats(bt).table()
    rank_units(bt, builtin_feature(batch, "the subject is plural"))
"""

from core.interpret.ablation import (
    Outcome, ablate, ablation_sweep, accuracy_by_distance, by_distance_table, feature_vs_random,
    readout, run,
)
from core.interpret.features import (
    StepFeature, builtin_feature, builtin_names, inside_quotes, token_feature,
)
from core.interpret.heldout import (
    HeldoutBatch, agreement_batch, heldout_batch, heldout_by_distance, trace_heldout,
)
from core.interpret.memory import (
    Memory, UnitMemory, keep_gate, memory_map, memory_stats, time_constant, unit_memory_map,
)
from core.interpret.saturation import GateSaturation, Saturation, gate_saturation
from core.interpret.search import rank_units, top_units

__all__ = [
    "HeldoutBatch", "agreement_batch", "heldout_batch", "heldout_by_distance", "trace_heldout",
    "GateSaturation", "Saturation", "gate_saturation",
    "Memory", "UnitMemory", "keep_gate", "memory_map", "memory_stats", "time_constant",
    "unit_memory_map",
    "StepFeature", "builtin_feature", "builtin_names", "inside_quotes", "token_feature",
    "rank_units", "top_units",
    "Outcome", "ablate", "ablation_sweep", "accuracy_by_distance", "by_distance_table",
    "feature_vs_random", "readout", "run",
]
