"""The interpretability lab's speed targets (issue 17), on the shipped models:

1. gate saturation and memory (keep-gate means, time constants, per-sequence means) over 1,000
   held-out sequences, trace_batch included: target at most 1 s (agreement at its longest,
   distances 1..40; adding at T = 200, the issue's long case);
2. an ablation sweep of 64 units (h of each unit zeroed at every step, one unit at a time, the
   readout and the task's metric after each) on 500 held-out sequences: target at most 10 s.

Each figure is the median of --repeats runs, printed beside its target and their ratio
(figure / target: at most 1 meets it), with the plain fused forward of the same batch
(`model(inputs)`) for scale. Subnormal floats are flushed in both (core.numerics): without it a
trained LSTM's saturated gates made a 500-sentence batch about 40x slower. Both run on the lab's
one intra-op thread (core.interpret.heldout.LAB_THREADS).

    python benchmarks/interpret_lab_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from core.interpret import (  # noqa: E402
    ablation_sweep, gate_saturation, heldout_batch, memory_stats, trace_heldout,
)
from core.interpret.heldout import LAB_THREADS  # noqa: E402
from core.numerics import flush_denormal  # noqa: E402
from core.sharing import torch_threads  # noqa: E402
from core.training.zoo import load_model  # noqa: E402

STATISTICS_TARGET_S = 1.0
SWEEP_TARGET_S = 10.0


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_seconds(model, batch, repeats: int) -> float:
    def forward():
        with torch.no_grad(), flush_denormal(), torch_threads(LAB_THREADS):
            model(batch.batch.inputs, batch.batch.lengths)
    return median_seconds(forward, repeats)


def report(what: str, seconds: float, target: float, forward: float) -> None:
    print(f"{what}: {seconds:.3f} s (target ≤ {target:g} s, ratio {seconds / target:.2f}; "
          f"the fused forward of the same batch {forward * 1000:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, traces on {LAB_THREADS} intra-op thread(s)")

    cases = [("agreement", "lstm", 40), ("agreement", "gru", 40), ("adding", "lstm", 200),
             ("adding", "gru", 200)]
    for task, cell, seq_len in cases:
        model = load_model(task, cell)
        batch = heldout_batch(task, model, n=1000, seq_len=seq_len)

        def statistics_of_batch(model=model, batch=batch):
            traced = trace_heldout(model, batch)  # trace_batch, subnormals flushed
            gate_saturation(traced)
            memory_stats(traced)

        statistics_of_batch()  # warm-up: first calls allocate
        report(f"saturation + memory, {task} {cell}, 1,000 sequences up to T = "
               f"{batch.steps}", median_seconds(statistics_of_batch, args.repeats),
               STATISTICS_TARGET_S, forward_seconds(model, batch, args.repeats))

    for cell in ("lstm", "gru"):
        model = load_model("agreement", cell)
        batch = heldout_batch("agreement", model, n=500, seq_len=40)
        seconds = median_seconds(lambda model=model, batch=batch: ablation_sweep(model, batch),
                                 max(1, args.repeats // 2))
        report(f"ablation sweep of 64 units, agreement {cell}, 500 sequences up to T = "
               f"{batch.steps}", seconds, SWEEP_TARGET_S, forward_seconds(model, batch, 3))


if __name__ == "__main__":
    main()
