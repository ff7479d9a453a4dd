"""ui/startup.py and app.py's `st.App`: `streamlit run app.py` serves the app with a start-up
hook that imports the heavy libraries before the first visitor asks for them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from streamlit.web.server.app_discovery import discover_asgi_app

from ui import startup

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, **env: str) -> dict:
    """Run `code` in a fresh interpreter at the project's root, with more environment `env`;
    what it printed last, as JSON."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True, env={**os.environ, **env})
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_streamlit_run_finds_the_app_with_its_start_up_hook():
    found = discover_asgi_app(ROOT / "app.py")
    assert found.is_asgi_app and found.import_string == "app:app"


SERVE = """
import asyncio, json, sys, threading
import app
light = not any(name in sys.modules for name in ("torch", "pandas"))
async def serve():
    async with app.app._user_lifespan(app.app):
        pass
asyncio.run(serve())
for thread in threading.enumerate():
    if thread.name == "gatescope-warm-up":
        thread.join(120)
import streamlit
print(json.dumps({"light": light, "is_app": isinstance(app.app, streamlit.App),
                  "warm": [name in sys.modules for name in %r]}))
""" % (startup.WARM_MODULES,)


def test_importing_the_app_is_light_and_its_hook_imports_the_heavy_libraries():
    # the server imports app.py before it answers: torch there would delay its start by the
    # very seconds the hook is for
    seen = run_python(SERVE)
    assert seen == {"light": True, "is_app": True, "warm": [True] * len(startup.WARM_MODULES)}


def test_the_benchmarks_reference_server_starts_cold():
    seen = run_python(SERVE, **{startup.SWITCH: "0"})
    assert seen["warm"] == [False] * len(startup.WARM_MODULES)


def test_a_training_process_and_a_session_run_make_no_server():
    # multiprocessing's children run the main file as __mp_main__; a session runs it as
    # __main__ (tested by every page test): neither builds an App
    seen = run_python("""
import json, runpy
found = runpy.run_path("app.py", run_name="__mp_main__")
print(json.dumps({"app": "app" in found}))
""")
    assert seen == {"app": False}


def test_a_library_that_fails_to_import_is_logged_and_the_rest_still_imported(caplog):
    with caplog.at_level(logging.ERROR, logger=startup.__name__):
        startup.import_heavy_modules(("gatescope_no_such_module", "json"))
    assert "gatescope_no_such_module" in caplog.text
    assert "json" in sys.modules
