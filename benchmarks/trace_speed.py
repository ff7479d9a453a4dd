"""How much a full trace costs next to the plain fused forward + backward of the same objective,
and what starting from a given state adds.

For each cell and size it times, in the same run and interleaved, `core.trace.trace(rnn, x)`
and the reference `rnn(x)` forward plus `.backward()` of the same objective (the sum of the
last output), and prints the ratio of the medians. Target: ratio <= 1.5 everywhere.

It also times `trace(rnn, x, initial_state=...)` from a random state, and prints its ratio to
`trace(rnn, x)` ("from h0"): what the initial state costs where it is used (for an LSTM it gives
up reading oneDNN's workspace, which starts from zeros). With `--baseline REV` it also times the
engine's `trace` as it was at git revision REV (core/engine/tracing.py at REV, on today's other
engine modules) and prints today's over it ("now/then"): "no cost where it is not used" is a
ratio of 1.00 within the machine's noise. These two are medians of each round's ratio.

Each size takes at least `--repeats` rounds of timings, and more where one call is short: enough
to spend about `--budget` seconds on the reference, because the median of a few sub-millisecond
timings moves by several percent from run to run on a shared machine.

    python benchmarks/trace_speed.py [--repeats 9] [--budget 0.3] [--input-size 32] [--cells lstm gru rnn]
                                     [--threads 2] [--baseline REV]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from core.engine import trace  # noqa: E402

SIZES = [(50, 32), (200, 64), (1000, 128), (2000, 256)]
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
TARGET = 1.5


def fused_forward_backward(rnn: nn.Module, x: torch.Tensor) -> None:
    rnn.zero_grad(set_to_none=True)
    output = rnn(x.unsqueeze(1))[0]
    output[-1].sum().backward()


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(samples: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """The median over rounds of one round's ratio: timings taken moments apart are slowed by
    the same neighbours, so this is steadier than a ratio of medians on a busy machine."""
    return statistics.median(a / b for a, b in zip(samples[numerator], samples[denominator]))


def trace_at(revision: str):
    """`trace` from core/engine/tracing.py as it was at git `revision`, importing today's other
    engine modules (it must still run with them)."""
    path = "core/engine/tracing.py"
    shown = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, capture_output=True, text=True)
    if shown.returncode != 0:
        sys.exit(f"--baseline {revision}: git cannot show {path} there: {shown.stderr.strip()}")
    name = f"tracing_at_{revision}".replace("-", "_").replace("~", "_").replace("^", "_")
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up there
    try:
        exec(compile(shown.stdout, f"{revision}:{path}", "exec"), module.__dict__)
    except ImportError as error:
        sys.exit(f"--baseline {revision}: its tracing.py does not import with today's engine: {error}")
    return module.trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9, help="least number of timing rounds per size")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of reference timings per size")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=list(CELLS))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the development machine has 2 cores)")
    parser.add_argument("--baseline", metavar="REV", help="also time trace as it was at this git revision")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    baseline_trace = trace_at(args.baseline) if args.baseline else None
    shuffler = random.Random(0)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input size {args.input_size}")
    header = f"{'cell':5} {'T x H':>11} {'fused fwd+bwd':>14} {'trace':>10} {'ratio':>7} {'from h0':>8}"
    if baseline_trace is not None:
        header += f" {'@' + args.baseline[:10]:>11} {'now/then':>9}"
    print(header + f" {'rounds':>7}")
    worst = 0.0
    now_over_then = []
    for cell in args.cells:
        cls = CELLS[cell]
        for seq_len, hidden_size in SIZES:
            torch.manual_seed(0)
            rnn = cls(args.input_size, hidden_size)
            x = torch.randn(seq_len, args.input_size)
            h0 = torch.rand(1, hidden_size) - 0.5
            initial_state = (h0, torch.randn(1, hidden_size)) if cell == "lstm" else h0
            timed = {
                "reference": lambda: fused_forward_backward(rnn, x),
                "trace": lambda: trace(rnn, x),
                "from h0": lambda: trace(rnn, x, initial_state=initial_state),
            }
            if baseline_trace is not None:
                timed["then"] = lambda: baseline_trace(rnn, x)
            for fn in timed.values():  # warm up every path (allocator, oneDNN primitives)
                fn()
            one_call = statistics.median(seconds(timed["reference"]) for _ in range(3))
            rounds = max(args.repeats, int(args.budget / one_call))
            samples: dict[str, list[float]] = {name: [] for name in timed}
            # interleaved, in a new order each round, so a noisy neighbour slows all alike
            order = list(timed)
            for _ in range(rounds):
                shuffler.shuffle(order)
                for name in order:
                    samples[name].append(seconds(timed[name]))
            median = {name: statistics.median(times) for name, times in samples.items()}
            ratio = median["trace"] / median["reference"]
            worst = max(worst, ratio)
            line = (
                f"{cell:5} {seq_len:>5} x {hidden_size:<3} {median['reference'] * 1e3:>11.2f} ms"
                f" {median['trace'] * 1e3:>7.2f} ms {ratio:>7.2f} {paired(samples, 'from h0', 'trace'):>8.2f}"
            )
            if baseline_trace is not None:
                now_over_then.append(paired(samples, "trace", "then"))
                line += f" {median['then'] * 1e3:>8.2f} ms {now_over_then[-1]:>9.3f}"
            print(line + f" {rounds:>7}")
    print(f"worst ratio {worst:.2f} (target <= {TARGET})")
    print("from h0: trace(rnn, x, initial_state=...) over trace(rnn, x)")
    if now_over_then:
        print(
            f"now/then: trace(rnn, x) today over at {args.baseline}: median {statistics.median(now_over_then):.3f},"
            f" range {min(now_over_then):.3f}-{max(now_over_then):.3f}"
        )


if __name__ == "__main__":
    main()
