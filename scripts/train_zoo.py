"""Retrain gatescope's model zoo (models/) from scratch, reproducibly.

    python scripts/train_zoo.py                       # all tasks x cells, 2 at a time
    python scripts/train_zoo.py --task adding --cell lstm
    python scripts/train_zoo.py --task names --architecture bidirectional
    python scripts/train_zoo.py --task airline --out /tmp/zoo   # somewhere else

Each model trains with its task's recipe (core.training.zoo.RECIPES) and fixed seed, on one torch
thread whatever the machine has (the recipe says so: another thread count gives other weights),
then the held-out score on a fresh set is written to its metadata next to the trivial baseline,
with what the exact weights depend on (`made_with`: torch, threads, CPU, a hash of the code).
The same torch on a CPU with the same instruction set makes the shipped weights bit for bit;
elsewhere the models differ in their last digits, and after thousands of steps in more than
that (see core/training/zoo.py). The table at the end shows every model's score, the baseline,
and the training seconds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cells import CELLS  # noqa: E402
from core.tasks import ALL_TASKS  # noqa: E402
from core.training.zoo import (  # noqa: E402
    ARCHITECTURES, MODELS_DIR, RECIPES, architectures, train_zoo_model,
)


ONE = "one"  # the one-layer, one-direction models on the command line (their name is "")


def train_one(task: str, cell: str, architecture: str, out: Path) -> tuple:
    """Train and save one model (in a worker process); returns its table row."""
    result, meta = train_zoo_model(task, cell, out, architecture=architecture)
    h = meta["heldout"]
    name = f"{task} x {cell}" + (f" x {architecture}" if architecture else "")
    print(f"{name}: {h['metric']} {h['value']:.4g} (baseline {h['baseline']:.4g}) "
          f"in {result.seconds:.1f} s, {result.status}", flush=True)
    extra = h["extra"]
    note = {
        "airline": lambda: f"seasonal naive {extra.get('seasonal_naive_rmse', 0):.1f}",
        "random": lambda: f"train accuracy {extra.get('train_accuracy', 0):.3f}",
        "agreement": lambda: f"distances 1-{h['seq_len']}",
        "copy": lambda: f"symbols right {extra.get('symbol_accuracy', 0):.3f}",
    }.get(task, lambda: "")()
    return (task, cell, architecture, h["metric"], h["value"], h["baseline"],
            h["higher_is_better"],
            result.seconds, result.steps, meta["param_count"], result.status, note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", action="append", choices=list(ALL_TASKS),
                        help="train only this task (repeatable); default: all")
    parser.add_argument("--cell", action="append", choices=list(CELLS),
                        help="train only this cell (repeatable); default: all")
    parser.add_argument("--architecture", action="append",
                        choices=[ONE, *(a for a in ARCHITECTURES if a)],
                        help=f"train only this network (repeatable; '{ONE}' for the one-layer, "
                             "one-direction models); default: every network the zoo ships for "
                             "each task")
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="where to write the models")
    parser.add_argument("--jobs", type=int, default=2,
                        help="models trained at once, one process each (default 2, one per core)")
    args = parser.parse_args(argv)

    tasks = args.task or list(ALL_TASKS)
    cells = args.cell or list(CELLS)
    wanted = None if not args.architecture else {"" if a == ONE else a for a in args.architecture}
    jobs = [(t, c, a) for t in tasks for c in cells for a in architectures(t)
            if wanted is None or a in wanted]
    if not jobs:
        parser.error("no zoo model is of those tasks, cells and networks")
    # Longest first, so two workers finish together.
    jobs.sort(key=lambda job: -_expected_cost(*job))
    start = time.perf_counter()
    if args.jobs <= 1 or len(jobs) == 1:
        results = [train_one(t, c, a, args.out) for t, c, a in jobs]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = [pool.submit(train_one, t, c, a, args.out) for t, c, a in jobs]
            results = [f.result() for f in futures]
    total = time.perf_counter() - start
    order = {job: i for i, job in enumerate(
        (t, c, a) for t in ALL_TASKS for a in architectures(t) for c in CELLS)}
    rows = sorted(results, key=lambda r: order[r[:3]])

    print()
    header = (f"{'task':<10} {'cell':<5} {'network':<13} {'metric':<18} {'model':>9} {'baseline':>9} "
              f"{'better':>6} {'steps':>6} {'params':>7} {'seconds':>8}  note")
    print(header)
    print("-" * len(header))
    for (task, cell, architecture, metric, value, baseline, higher, seconds, steps, params,
         status, note) in rows:
        better = value > baseline if higher else value < baseline
        if task == "random":  # any difference from chance here is noise, not learning
            better = None
        print(f"{task:<10} {cell:<5} {architecture or ONE:<13} {metric:<18} {value:>9.4g} {baseline:>9.4g} "
              f"{ {True: 'yes', False: 'no', None: 'chance'}[better]:>6} {steps:>6} {params:>7} "
              f"{seconds:>8.1f}  {note}" + ("" if status == "finished" else f" ({status})"))
    size = sum(p.stat().st_size for p in Path(args.out).glob("*.*")
               if p.suffix in (".safetensors", ".json"))
    print(f"\n{len(rows)} models in {total:.0f} s wall time ({args.jobs} jobs); "
          f"{args.out} holds {size / 1024:.0f} KB")
    return 0


def _expected_cost(task: str, cell: str, architecture: str) -> float:
    steps = RECIPES[task].max_steps
    length = {"adding": 55, "agreement": 40, "sentiment": 60, "names": 20, "airline": 24,
              "copy": 26}.get(task, 10)
    return steps * length * (2 if cell == "gru" else 1) * (2 if architecture else 1)


if __name__ == "__main__":
    raise SystemExit(main())
