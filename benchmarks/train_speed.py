"""How long core.training.loop needs to solve the adding problem at T = 50, per cell.

Trains each cell with the same settings (Adam 2e-3, clip 1, H 64, batch 50, T = 50; LSTM
forget-gate bias 1) and stops as soon as the held-out MSE (checked every 100 steps) is below
0.01. Prints the seconds to get there and their ratio to the 60 s target ("well under a
minute" on 2 CPU cores: ratio well under 1), or the MSE reached when the step budget ran out
(the vanilla RNN: about the 0.167 of always answering 1).

    python benchmarks/train_speed.py [--threads 1] [--max-steps 4000]

One thread is the default: models this small gain little from a second one, and on a 2-core
machine shared with other work, two threads were 8x slower (measured: LSTM 130 s with 2 threads
against 14 s with 1, at a load average of 4-6).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.training.loop import TrainConfig, train  # noqa: E402

TARGET_MSE = 0.01
TARGET_SECONDS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=4000)
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"adding problem, T = 50, {args.threads} threads: time to held-out MSE < {TARGET_MSE}")
    print(f"{'cell':<5} {'steps':>6} {'seconds':>8} {'MSE':>8} {'vs 60 s':>8}")
    for cell in args.cells:
        reached = {}

        def on_progress(event, reached=reached):
            if event.heldout_metric is not None and event.heldout_metric < TARGET_MSE:
                reached.setdefault("event", event)

        config = TrainConfig(seq_len=50, max_steps=args.max_steps, heldout_every=100,
                             forget_bias=1.0 if cell == "lstm" else None, seed=0)
        result = train("adding", cell, config, on_progress=on_progress,
                       should_stop=lambda reached=reached: "event" in reached)
        if "event" in reached:
            e = reached["event"]
            print(f"{cell:<5} {e.step:>6} {e.elapsed:>8.1f} {e.heldout_metric:>8.4f} "
                  f"{e.elapsed / TARGET_SECONDS:>8.2f}")
        else:
            print(f"{cell:<5} {result.steps:>6} {result.seconds:>8.1f} {result.score.value:>8.4f} "
                  f"{'not reached':>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
