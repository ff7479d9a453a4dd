"""What a visitor's CSV costs the server: reading it, and what is left of it afterwards.

Issue 19 item 2: a 20 MB CSV on Explore grew the server by about 250 MB per rerun, never given
back, and each rerun parsed the file twice with pandas (about 3 s of CPU; 4 s for a 290 KB file
with 20,000 columns). Now a file is read once per upload (`core.io.tables.read_table`, kept in
the session), within 2,001 rows and 100 columns, and its trace is kept in the session only.

Two measurements, each against a reference measured in the same run:

1. Reading (core): `read_table` against the old path, pandas' `read_csv(thousands=",")` of the
   same bytes, on the issue's two files and on the largest file that is accepted. Prints the
   median seconds of each, their ratio, the peak memory of one read (tracemalloc) and the bytes
   the result holds (the old values list went into a cache shared by every visitor, once per
   distinct file). The old page read twice per rerun; the new page reads once per upload.
2. The page (AppTest, in this process): three sessions each upload the largest accepted file and
   rerun three times, and end. Prints the memory still allocated after they end (tracemalloc,
   after a full collection), next to the same three sessions on a seeded sample (the
   reference): the CSV sessions must leave no more behind than the sample ones.

    python benchmarks/csv_input.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from core.io.tables import MAX_COLUMNS, MAX_ROWS, read_table  # noqa: E402


def files() -> dict[str, bytes]:
    one_column = b"passengers\n" + b"123.456\n" * 2_600_000
    wide = (",".join(f"column_{i}" for i in range(20_000)) + "\n"
            + ",".join(["1.5"] * 20_000) + "\n").encode()
    header = "month," + ",".join(f"series_{i}" for i in range(MAX_COLUMNS - 1))
    row = lambda r: f"m{r}," + ",".join(f"{100 + (r * 7 + c) % 997:.6f}"  # noqa: E731
                                        for c in range(MAX_COLUMNS - 1))
    largest = ("\n".join([header] + [row(r) for r in range(MAX_ROWS)]) + "\n").encode()
    return {"20 MB, one column (2.6 M rows)": one_column[: 20 * 2**20 - 64],
            "290 KB, 20,000 columns": wide,
            f"largest accepted ({MAX_COLUMNS} columns x {MAX_ROWS:,} rows)": largest}


def new_read(data: bytes):
    try:
        return read_table(data)
    except ValueError as err:  # refused: the message is all that is kept
        return str(err)


def old_read(data: bytes):
    """What the page did before, per read (twice per rerun): pandas over the whole file, and
    the chosen column's values as a list (which went into the shared cache)."""
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(data), thousands=",")
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    return frame[numeric[-1]].astype(float).tolist() if numeric else None


def seconds(fn, data: bytes, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def memory(fn, data: bytes) -> tuple[int, int]:
    """(peak bytes during one read, bytes its result still holds)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = fn(data)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak - base, held - base


def reading(repeats: int) -> None:
    import pandas  # noqa: F401  (imported once, outside the timings)

    print("1. Reading a file (median of", repeats, "reads; MB = 10^6 bytes)")
    print(f"{'file':44} {'new s':>8} {'old s':>8} {'ratio':>7} {'new peak':>9} "
          f"{'old peak':>9} {'new held':>9} {'old held':>9}")
    for name, data in files().items():
        new_s, old_s = seconds(new_read, data, repeats), seconds(old_read, data, repeats)
        (new_peak, new_held), (old_peak, old_held) = memory(new_read, data), memory(old_read, data)
        print(f"{name:44} {new_s:8.3f} {old_s:8.3f} {new_s / old_s:7.3f} "
              f"{new_peak / 1e6:8.1f}M {old_peak / 1e6:8.1f}M {new_held / 1e6:8.2f}M "
              f"{old_held / 1e6:8.2f}M")
    print("Per rerun: the new page reads nothing (the table is kept per upload); the old page "
          "read the file twice.")


def sessions(data: bytes | None, count: int = 3, reruns: int = 3) -> int:
    """Bytes still allocated after `count` Explore sessions (CSV upload, or the seeded sample
    when `data` is None) each rerun `reruns` times and end."""
    from streamlit.testing.v1 import AppTest

    def one() -> None:
        query = {"task": "airline", "source": "random",
                 "input": "csv" if data is not None else "sample"}
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        if data is not None:
            at.get("file_uploader")[0].set_value(("series.csv", data, "text/csv"))
            at.run()
        for _ in range(reruns):
            next(b for b in at.button if b.label == "step ▶").click().run()
        assert not at.exception, [e.value for e in at.exception]

    one()  # warm: imports, the shipped models, Streamlit's own caches
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count):
        one()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before


def page() -> None:
    largest = list(files().values())[-1]
    reference = sessions(None)
    csv = sessions(largest)
    print(f"\n2. The page: memory left after 3 sessions that each reran 3 times and ended")
    print(f"   seeded sample (reference): {reference / 1e6:7.2f} MB")
    print(f"   largest accepted CSV ({len(largest) / 1e6:.1f} MB file): {csv / 1e6:7.2f} MB")
    print(f"   difference: {(csv - reference) / 1e6:+.2f} MB (target: about 0; before the fix "
          "a CSV's values stayed in the shared trace cache)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    reading(args.repeats)
    page()
