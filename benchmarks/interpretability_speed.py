"""The interpretability lab's speed, each figure a ratio against a reference measured in the same run.

Engine part:
- an intervened trace (forward, backward, every state, gate and gradient of the clamped network)
  against PyTorch's own fused forward + backward of the unclamped module, T = 200, H = 64:
  interventions at a few scattered steps and at every step. Target: ratio <= 3.
- trace_batch (every state and gate of every sequence) against the module's own fused forward
  `rnn(x)` of the same batch, H = 64: 1,000 held-out-like sequences of up to 50 steps and 256 of
  up to 200. Target: ratio <= 1.3. Also shown: the same with an ablation of 16 units at every
  step (the lab's sweeps), against the same reference.

Timings of the two sides are interleaved so that a noisy neighbour slows both alike; each figure
is the ratio of medians. On a machine others share, `--clock cpu` times the CPU this process used
(every thread of it, page faults included) rather than the wall clock, which then also counts the
time the process waited for a core: a longer call waits more often, so wall-clock ratios grow
with the neighbours' load.

    python benchmarks/interpretability_speed.py [--repeats 9] [--budget 1.5] [--cells lstm gru rnn]
        [--threads 2] [--only interventions|batch] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.trace import Intervention, trace, trace_batch  # noqa: E402

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
INPUT_SIZE = 32  # the shipped agreement models' embedding width
HIDDEN_SIZE = 64
INTERVENTION_TARGET = 3.0
BATCH_TARGET = 1.3


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def seconds(fn) -> float:
    start = clock()
    fn()
    return clock() - start


def interleaved_medians(reference, measured, repeats: int, budget: float) -> tuple[float, float, int]:
    """Medians of `reference` and `measured` timed in turn, at least `repeats` pairs and enough to
    spend about `budget` seconds on the reference (short calls vary by several percent)."""
    reference(), measured()  # warm up: allocator, oneDNN primitives
    one_call = statistics.median(seconds(reference) for _ in range(3))
    pairs = max(repeats, int(budget / max(one_call, 1e-6)))
    reference_times, measured_times = [], []
    for _ in range(pairs):
        reference_times.append(seconds(reference))
        measured_times.append(seconds(measured))
    return statistics.median(reference_times), statistics.median(measured_times), pairs


def fused_forward_backward(rnn: nn.Module, x: torch.Tensor) -> None:
    rnn.zero_grad(set_to_none=True)
    output = rnn(x.unsqueeze(1))[0]
    output[-1].sum().backward()


def intervention_cases(cell: str) -> dict[str, list[Intervention]]:
    """What the lab's intervention panel sends: an ablation of 16 units at every step; a clamp of h
    and a gate held open at five scattered steps (a 'what if at this word' probe); a clamp of c
    (GRU: a gate) to a mid-range value over a step range; and, the engine's slowest case, that
    clamp at five scattered steps, which the kernel cannot take as an input (one more kernel
    call per step)."""
    state = "cell_state" if cell == "lstm" else "hidden"
    gate = {"lstm": "forget", "gru": "update", "rnn": None}[cell]
    scattered = [20, 60, 100, 140, 180]
    sparse = [Intervention(0, 0, range(0, 64, 8), "hidden", steps=scattered, value=0.5)]
    if gate:
        sparse.append(Intervention(0, 0, range(4, 64, 8), gate, steps=scattered, value=1.0))
    cases = {
        "every step": [Intervention(0, 0, range(16), state)],
        "5 steps": sparse,
    }
    if cell != "rnn":
        mid_range = state if cell == "lstm" else gate
        cases["steps 50-149 := .5"] = [Intervention(0, 0, range(0, 64, 8), mid_range, steps=range(50, 150), value=0.5)]
        cases["5 steps, := 0.5"] = [Intervention(0, 0, range(0, 64, 8), mid_range, steps=scattered, value=0.5)]
    return cases


def intervention_trace_ratios(cells, repeats: int, budget: float, seq_len: int = 200) -> float:
    """Prints intervened trace / fused forward + backward per cell and case; returns the worst."""
    print(f"\nIntervened trace vs fused forward + backward, T = {seq_len}, H = {HIDDEN_SIZE} (target <= {INTERVENTION_TARGET})")
    print(f"{'cell':5} {'interventions':16} {'fused fwd+bwd':>14} {'trace':>10} {'ratio':>7} {'plain trace':>12} {'timings':>8}")
    worst = 0.0
    for cell in cells:
        torch.manual_seed(0)
        rnn = CELLS[cell](INPUT_SIZE, HIDDEN_SIZE)
        x = torch.randn(seq_len, INPUT_SIZE)
        _, plain_s, _ = interleaved_medians(lambda: fused_forward_backward(rnn, x), lambda: trace(rnn, x), repeats, budget / 2)
        for name, interventions in intervention_cases(cell).items():
            ref_s, traced_s, pairs = interleaved_medians(
                lambda: fused_forward_backward(rnn, x), lambda: trace(rnn, x, interventions=interventions), repeats, budget
            )
            ratio = traced_s / ref_s
            worst = max(worst, ratio)
            print(
                f"{cell:5} {name:16} {ref_s * 1e3:>11.2f} ms {traced_s * 1e3:>7.2f} ms {ratio:>7.2f}"
                f" {plain_s * 1e3:>9.2f} ms {pairs:>8}"
            )
    print(f"worst intervened trace ratio {worst:.2f} (target <= {INTERVENTION_TARGET})")
    return worst


def heldout_like_batch(batch_size: int, seq_len: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Right-padded sequences of lengths between half the padded length and all of it."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(seq_len // 2, seq_len + 1, batch_size)
    lengths[0] = seq_len
    x = torch.from_numpy(rng.standard_normal((batch_size, seq_len, INPUT_SIZE), dtype=np.float32))
    return x, lengths


def trace_batch_ratios(cells, repeats: int, budget: float) -> float:
    """Prints trace_batch / the module's fused forward of the same batch; returns the worst
    ratio without interventions."""
    print(f"\ntrace_batch vs the module's own forward rnn(x) of the same batch, H = {HIDDEN_SIZE} (target <= {BATCH_TARGET})")
    print(f"{'cell':5} {'B x T':>10} {'case':22} {'rnn(x)':>10} {'trace_batch':>12} {'ratio':>7} {'timings':>8}")
    worst = 0.0
    for cell in cells:
        for batch_size, seq_len in [(1000, 50), (256, 200)]:
            torch.manual_seed(0)
            rnn = CELLS[cell](INPUT_SIZE, HIDDEN_SIZE, batch_first=True)
            x, lengths = heldout_like_batch(batch_size, seq_len)
            ablation = [Intervention(0, 0, range(16), "cell_state" if cell == "lstm" else "hidden")]
            cases = {
                "all of length T": lambda: trace_batch(rnn, x),
                "held-out lengths": lambda: trace_batch(rnn, x, lengths),
                "+ 16 units ablated": lambda: trace_batch(rnn, x, lengths, interventions=ablation),
            }
            for name, measured in cases.items():
                with torch.no_grad():
                    ref_s, batch_s, pairs = interleaved_medians(lambda: rnn(x), measured, repeats, budget)
                ratio = batch_s / ref_s
                if "ablated" not in name:
                    worst = max(worst, ratio)
                print(
                    f"{cell:5} {batch_size:>4} x {seq_len:<3} {name:22} {ref_s * 1e3:>7.1f} ms {batch_s * 1e3:>9.1f} ms"
                    f" {ratio:>7.2f} {pairs:>8}"
                )
    print(f"worst trace_batch ratio {worst:.2f} (target <= {BATCH_TARGET})")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9, help="least number of timings per figure")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of reference timings per figure")
    parser.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=list(CELLS))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the deployment has 2 cores)")
    parser.add_argument("--only", choices=["interventions", "batch"], help="run one of the two parts")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time, all threads (a shared machine)")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input size {INPUT_SIZE}, {args.clock} clock")
    if args.only != "batch":
        intervention_trace_ratios(args.cells, args.repeats, args.budget)
    if args.only != "interventions":
        trace_batch_ratios(args.cells, args.repeats, args.budget)


if __name__ == "__main__":
    main()
