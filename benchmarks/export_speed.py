"""How fast Explore's slides are made on the server (issue 14: "a GIF of 200 steps built in
<= 5 s"), on one thread, each measurement in a fresh process.

    python benchmarks/export_speed.py [--steps 200] [--scale 2] [--repeats 3]

The view: the adding task's shipped LSTM (64 units, six maps) on a 200-step input. Prints, as
a button press costs it (the slide drawn from the trace, then the file):
- the GIF of every step at 10 steps/s, against the target (5 s): the first press in a fresh
  server process, cold (matplotlib imported and fonts loaded on the press) and as the page
  leaves it (`warm_up` run when the downloads are drawn), and later presses (median);
- the PNG of one step;
- the reference, measured in the same run: the same GIF frames (the same palette and pixels)
  written by Pillow's own `save(save_all=True)`, which keeps every frame in memory and finds
  each frame's changes itself. Both print their time and the process's peak memory above what
  it held before the press, and their ratio.

Times are this process's CPU seconds (all threads) beside the wall-clock seconds: on a machine
shared with other work, the wall clock also counts the neighbours' turns.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 5.0


def view(steps: int):
    """The trace and view a press starts from (what the page holds already)."""
    import torch

    from core.io.exports import explore_view
    from core.training import zoo
    from core.views import explore as ex

    torch.set_num_threads(1)
    source = "shipped" if ("adding", "lstm") in set(zoo.available()) else "random"
    state = ex.ExploreState(task="adding", cell="lstm", source=source, len=steps, t=0)
    choice = ex.resolve_model(state)
    result = ex.run(state.traced(), choice, ex.make_example(state))
    units, _ = ex.picked_units(state, result.trace)
    return explore_view(state, choice, result), result, units


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(what: str, steps: int, scale: int, repeats: int, queue) -> None:
    """In a fresh process: build `what` ("gif", "gif-cold", "png" or "reference") `repeats`
    times; all but "gif-cold" after the page's warm-up."""
    from core.figures.slides import warm_up
    from core.io.exports import explore_slide, slide_gif, slide_png

    view_, result, units = view(steps)
    if what != "gif-cold":
        warm_up()
    before = peak_kib()
    times = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        slide = explore_slide(result, view_, units, scale)
        if what.startswith("gif"):
            data = slide_gif(slide, 0, steps - 1, 10)
        elif what == "png":
            data = slide_png(slide, view_)
        else:
            data = reference_gif(slide, steps)
        times.append((time.process_time() - cpu, time.perf_counter() - wall))
    queue.put((times, len(data), (peak_kib() - before) / 1024))


def reference_gif(slide, steps: int) -> bytes:
    """The same frames (our palette, our pixels) through Pillow's save_all."""
    from PIL import Image

    from core.figures.slides import _GifWriter

    writer = _GifWriter(slide)
    frames = []
    for t in range(steps):
        frame = Image.fromarray(writer.frame(t), mode="P")
        frame.putpalette(writer.colours.tobytes())
        frames.append(frame)
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100,
                   loop=0, disposal=1, optimize=True)
    return out.getvalue()


def run(what: str, steps: int, scale: int, repeats: int):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=measure, args=(what, steps, scale, repeats, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--scale", type=int, default=2, choices=(2, 3))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    steps, scale = args.steps, args.scale
    print(f"Slides of the adding task's LSTM, {steps} steps, {scale}x ({960 * scale} px wide), "
          "one thread; CPU s (wall s)")

    cold, _, _ = run("gif-cold", steps, scale, 1)
    gif, gif_bytes, gif_mib = run("gif", steps, scale, args.repeats)
    first, later = gif[0], gif[1:] or gif
    cpu = statistics.median(t[0] for t in later)
    wall = statistics.median(t[1] for t in later)
    print(f"  GIF, {steps} frames at 10 steps/s: {gif_bytes / 2**20:.1f} MiB, peak memory "
          f"+{gif_mib:.0f} MiB")
    print(f"    first press, cold {cold[0][0]:.2f} s ({cold[0][1]:.2f}); after the page's "
          f"warm-up {first[0]:.2f} s ({first[1]:.2f}); later presses {cpu:.2f} s ({wall:.2f})")
    print(f"    against the target ({TARGET_SECONDS:.0f} s, CPU): cold "
          f"{cold[0][0] / TARGET_SECONDS:.2f}, warmed {first[0] / TARGET_SECONDS:.2f}, "
          f"later {cpu / TARGET_SECONDS:.2f}")
    png, png_bytes, _ = run("png", steps, scale, args.repeats)
    print(f"  PNG of one step: {statistics.median(t[0] for t in png[1:] or png):.2f} s "
          f"({statistics.median(t[1] for t in png[1:] or png):.2f}); "
          f"{png_bytes / 2**20:.2f} MiB")
    ref, ref_bytes, ref_mib = run("reference", steps, scale, 1)
    print(f"  reference, the same frames through Pillow's save_all: {ref[0][0]:.2f} s "
          f"({ref[0][1]:.2f}); {ref_bytes / 2**20:.1f} MiB; peak memory +{ref_mib:.0f} MiB")
    print(f"    streaming writer / save_all: time {first[0] / ref[0][0]:.2f} (first presses), "
          f"peak memory {gif_mib / max(ref_mib, 1):.2f}")


if __name__ == "__main__":
    main()
