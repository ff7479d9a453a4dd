"""Runs whose browser tab has gone free their training slots (issue 19, item 6), on a real
server: a tab starts three long runs (every slot), then closes; another visitor's run, which
would otherwise wait up to the first runs' two-minute limit, trains soon after. The server
runs with a 2 s grace (GATESCOPE_ABANDONED_GRACE_SECONDS) instead of 15 s."""

from __future__ import annotations

import os
import time

import pytest

from harness import free_port, start_app, stop_app, wait_for_app

pytestmark = pytest.mark.e2e


def test_the_runs_of_a_closed_tab_are_stopped_and_free_their_slots(browser, artifacts):
    os.environ["GATESCOPE_ABANDONED_GRACE_SECONDS"] = "2"
    try:
        port = free_port()
        server = start_app(port, artifacts / "streamlit-abandoned.log")
    finally:
        del os.environ["GATESCOPE_ABANDONED_GRACE_SECONDS"]
    url = f"http://127.0.0.1:{port}"
    try:
        first = browser.new_context().new_page()
        first.goto(f"{url}/train?steps=10000&seconds=120&hidden=8")
        wait_for_app(first)
        first.get_by_role("button", name="Train", exact=True).click()
        first.wait_for_function(  # all three train: every slot of the server is taken
            """() => (document.body.innerText.match(/running · step [1-9]/g) || []).length
                     === 3""", timeout=60_000)
        first.context.close()  # the tab is closed mid-training
        closed = time.monotonic()

        second = browser.new_context().new_page()
        second.goto(f"{url}/train?cells=gru&steps=20&hidden=8")
        wait_for_app(second)
        second.get_by_role("button", name="Train", exact=True).click()
        second.get_by_text("Trained in this session").wait_for(timeout=30_000)
        waited = time.monotonic() - closed
        assert "finished, 20 steps" in second.inner_text("body")
        assert waited < 30, waited  # not the two minutes the abandoned runs had left
    finally:
        stop_app(server)
    log = (artifacts / "streamlit-abandoned.log").read_text()
    assert "Traceback" not in log, log
