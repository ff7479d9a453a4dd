"""What the server does once, as it starts: import the heavy libraries before a visitor asks.

A visitor's first page imports torch and pandas: 1.5 s of a 2-core machine (measured: torch
1.13 s, pandas 0.34 s; Streamlit has imported Plotly already), and every visitor of a freshly
started server waits on it (Python's import lock holds the others until the first has
finished). Streamlit runs `app.py`'s `st.App` under uvicorn, whose start-up hook (the
lifespan) starts this warm-up in a thread and lets the server answer at once. A visitor who
arrives while it runs waits at the same import lock for the rest of it, never longer than
before. (A browser that asks the moment the server answers gains nothing: the import holds the
server up as it sends the page and its scripts; README, "How fast the page feels".)

Only third-party libraries, which never import this app's modules: two threads importing
modules that import each other can each hold a lock the other needs, and Python then hands one
of them a half-made module ("cannot import name ... from partially initialized module"). A
leaf library's locks are taken in one order by every thread.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading

log = logging.getLogger(__name__)

#: In the order a page imports them (app.py imports torch, then pandas, before any page).
WARM_MODULES = ("torch", "pandas")

#: The warm-up thread's name (tests look for it).
THREAD_NAME = "gatescope-warm-up"

#: Set to "0" in the server's environment, no warm-up: benchmarks/ui_speed.py's reference.
SWITCH = "GATESCOPE_WARM_UP"


def import_heavy_modules(names=WARM_MODULES) -> None:
    """Import `names`, in order. A failure is logged, not raised: the page that needs the
    module imports it again and reports the failure where a visitor sees it."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the page's own import reports it
            log.exception("warm-up: importing %s failed", name)


@contextlib.asynccontextmanager
async def warm_up(_app):
    """The server's lifespan: start the warm-up, serve at once."""
    if os.environ.get(SWITCH) != "0":
        threading.Thread(target=import_heavy_modules, name=THREAD_NAME, daemon=True).start()
    yield
