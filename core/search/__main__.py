"""python -m core.search: run search workers, list studies. `--help` explains each."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from core.cells import CELLS
from core.tasks import TASKS

DESCRIPTION = """\
Hyperparameter search, LSTM against GRU against RNN, with Optuna.

A worker runs trials of one study: each trial trains one model of the task (a cell and its
hyperparameters from the task's search space) and records its held-out score, parameter
count and training time; the cells take turns, so each gets the same number of trials.
Start as many workers as you have cores, on as many machines as you have, against one
study: they share its trials through the storage.

Storage: by default one SQLite file (artifacts/search/studies.sqlite3, or the folder in
GATESCOPE_SEARCH_DIR), for workers on this machine. For many machines, one PostgreSQL
server: --storage postgresql://user:password@host:5432/database, or set
GATESCOPE_SEARCH_STORAGE to that URL for the workers and for the app's Search page, which
then shows the study live.

Examples:
  python -m core.search worker --task adding --study adding-1 --trials 12 --max-steps 1000
  python -m core.search studies
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.search", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    worker = commands.add_parser(
        "worker", help="run N trials of a study (made now if it does not exist)",
        description="Run N trials of one study, then exit. Ctrl-C or SIGTERM ends the trial "
                    "in progress within a training step (recorded as failed, 'stopped').")
    worker.add_argument("--task", required=True, choices=sorted(TASKS),
                        help="the task every trial trains on")
    worker.add_argument("--study", required=True, metavar="NAME",
                        help="the study's name: letters, digits, '.', '_', '-' (at most 64)")
    worker.add_argument("--trials", required=True, type=int, metavar="N",
                        help="how many trials this worker runs")
    worker.add_argument("--storage", metavar="URL",
                        help="sqlite:///file or postgresql://user:password@host:port/db "
                             "(default: GATESCOPE_SEARCH_STORAGE, else the SQLite file)")
    worker.add_argument("--max-steps", type=int, metavar="S",
                        help="at most S training steps per trial (default: the task's "
                             "recipe, as the shipped models trained)")
    worker.add_argument("--directory", metavar="DIR",
                        help="where the trials' weights go (default: artifacts/search/weights)")
    worker.add_argument("--cells", default=",".join(CELLS), metavar="CELLS",
                        help="the cells the trials take turns with (default: rnn,lstm,gru)")
    worker.add_argument("--seed", type=int, default=0,
                        help="this worker's sampler seed: give each worker its own (default 0)")
    studies = commands.add_parser("studies", help="list the studies in a storage")
    studies.add_argument("--storage", metavar="URL", help="as for worker")
    return parser


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum, frame) -> None:
        stop.set()
        print("stopping: the trial in progress ends within a training step", file=sys.stderr,
              flush=True)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from core.limits import LimitError  # after --help: it is instant
    from core.search.storage import SearchError

    try:
        if args.command == "studies":
            return _list_studies(args.storage)
        from core.search.worker import run_worker

        stop = _stop_on_signals()
        cells = tuple(c.strip() for c in args.cells.split(",") if c.strip())
        report = run_worker(args.task, args.study, args.trials, storage=args.storage,
                            max_steps=args.max_steps, directory=args.directory, cells=cells,
                            seed=args.seed, should_stop=stop.is_set,
                            on_trial=lambda line: print(line, flush=True))
    except (SearchError, LimitError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.study}: {report.count('COMPLETE')} complete, {report.count('PRUNED')} pruned, "
          f"{report.count('FAIL')} failed{' (stopped)' if report.stopped else ''}", flush=True)
    return 0


def _list_studies(storage: str | None) -> int:
    from core.search.results import StudyResults
    from core.search.storage import open_storage, study_names

    opened = open_storage(storage)
    for name in study_names(opened):
        print(StudyResults.load(name, opened).summary_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
