"""How much a full trace costs next to the plain fused forward + backward of the same objective.

For each cell and size it times, in the same run and interleaved, `core.trace.trace(rnn, x)`
and the reference `rnn(x)` forward plus `.backward()` of the same objective (the sum of the
last output), and prints the ratio of the medians. Target: ratio <= 1.5 everywhere.

Each size takes at least `--repeats` pairs of timings, and more where one call is short: enough
to spend about `--budget` seconds on the reference, because the median of a few sub-millisecond
timings moves by several percent from run to run on a shared machine.

    python benchmarks/trace_speed.py [--repeats 9] [--budget 0.3] [--input-size 32] [--cells lstm gru rnn]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.engine import trace  # noqa: E402

SIZES = [(50, 32), (200, 64), (1000, 128), (2000, 256)]
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
TARGET = 1.5


def fused_forward_backward(rnn: nn.Module, x: torch.Tensor) -> None:
    rnn.zero_grad(set_to_none=True)
    output = rnn(x.unsqueeze(1))[0]
    output[-1].sum().backward()


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9, help="least number of timings per size")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of reference timings per size")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=list(CELLS))
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input size {args.input_size}")
    print(f"{'cell':5} {'T x H':>11} {'fused fwd+bwd':>14} {'trace':>10} {'ratio':>7} {'timings':>8}")
    worst = 0.0
    for cell in args.cells:
        cls = CELLS[cell]
        for seq_len, hidden_size in SIZES:
            torch.manual_seed(0)
            rnn = cls(args.input_size, hidden_size)
            x = torch.randn(seq_len, args.input_size)
            # warm up both paths (allocator, oneDNN primitives) before timing
            fused_forward_backward(rnn, x)
            trace(rnn, x)
            one_call = median_seconds(lambda: fused_forward_backward(rnn, x), 3)
            samples = max(args.repeats, int(args.budget / one_call))
            reference, traced = [], []
            # interleave so a noisy neighbour slows both alike
            for _ in range(samples):
                reference.append(median_seconds(lambda: fused_forward_backward(rnn, x), 1))
                traced.append(median_seconds(lambda: trace(rnn, x), 1))
            ref_s, trace_s = statistics.median(reference), statistics.median(traced)
            ratio = trace_s / ref_s
            worst = max(worst, ratio)
            print(
                f"{cell:5} {seq_len:>5} x {hidden_size:<3} {ref_s * 1e3:>11.2f} ms {trace_s * 1e3:>7.2f} ms"
                f" {ratio:>7.2f} {samples:>8}"
            )
    print(f"worst ratio {worst:.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
