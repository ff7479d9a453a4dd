"""Memory comes back (issue 19, item 2): big uploads through many reruns and sessions leave
nothing behind once those sessions are gone.

A 19 MB CSV stays loaded through 100 reruns, and a 12 MB checkpoint is uploaded 50 times, each
spread over several browser sessions. The sessions then close and expire, and the server's
memory (PSS of its process tree) must return to within 100 MB of where it started.

Streamlit keeps a closed tab's session for `server.disconnectedSessionTTL` seconds (120 by
default) so that a reloaded tab can reconnect; the test shortens that to a few seconds, since
what it checks is that nothing of a session outlives it, not how long Streamlit waits.
"""

from __future__ import annotations

import time

import pytest

from harness import (
    ARTIFACTS, big_checkpoint, big_csv, free_port, start_app, stop_app, tree_memory_bytes,
    wait_for_app,
)

pytestmark = pytest.mark.e2e

RECONNECT_SECONDS = 3  # the server's disconnectedSessionTTL here
SESSIONS = 4
RERUNS = 100  # with the CSV loaded, over all sessions
UPLOADS = 50  # of the checkpoint, over all sessions
ALLOWED_GROWTH = 100 * 2**20
UPLOADER = '[data-testid="stFileUploaderDropzoneInput"]'


def rerun(page) -> None:
    """Rerun the script as a visitor does with the R key, and wait for it to finish."""
    page.evaluate("document.activeElement && document.activeElement.blur()")  # not in a box
    page.keyboard.press("r")
    wait_for_app(page)


def settle(browser, url: str, server) -> int:
    """The server's memory once every closed session has expired: one short visit makes
    Streamlit drop the expired ones (it does so lazily, as sessions come and go)."""
    time.sleep(RECONNECT_SECONDS + 1)
    for _ in range(2):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/about")
        wait_for_app(page)
        context.close()
        time.sleep(RECONNECT_SECONDS + 1)
    return tree_memory_bytes(server.pid)


def test_memory_returns_once_sessions_with_big_uploads_are_gone(browser):
    port = free_port()
    server = start_app(port, ARTIFACTS / "streamlit-soak.log",
                       options={"server.disconnectedSessionTTL": RECONNECT_SECONDS})
    url = f"http://127.0.0.1:{port}"
    csv, weights = big_csv(), big_checkpoint()
    assert 18 * 2**20 < len(csv) < 20 * 2**20 and 11 * 2**20 < len(weights) < 13 * 2**20
    try:
        # Warm up what every visitor shares (models, caches, imports) before the baseline.
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/?task=airline&input=csv")
        wait_for_app(page)
        page.goto(f"{url}/?task=adding&source=upload")
        wait_for_app(page)
        context.close()
        start = settle(browser, url, server)
        peak = start

        for session in range(SESSIONS):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{url}/?task=airline&input=csv")
            wait_for_app(page)
            page.locator(UPLOADER).set_input_files(
                {"name": f"big-{session}.csv", "mimeType": "text/csv", "buffer": csv})
            wait_for_app(page)
            for _ in range(RERUNS // SESSIONS):
                rerun(page)
            peak = max(peak, tree_memory_bytes(server.pid))

            page.goto(f"{url}/?task=adding&source=upload")
            wait_for_app(page)
            for upload in range(UPLOADS // SESSIONS + (session < UPLOADS % SESSIONS)):
                name = f"lstm-{session}-{upload}.safetensors"
                page.locator(UPLOADER).set_input_files(
                    {"name": name, "mimeType": "application/octet-stream", "buffer": weights})
                wait_for_app(page)
                page.get_by_text(f"your LSTM from {name}").first.wait_for(timeout=60_000)
            peak = max(peak, tree_memory_bytes(server.pid))
            context.close()

        end = settle(browser, url, server)
        mib = 2**20
        print(f"server memory: {start / mib:.0f} MiB at start, peak {peak / mib:.0f} MiB, "
              f"{end / mib:.0f} MiB after the sessions expired")
        assert end - start < ALLOWED_GROWTH, (
            f"{(end - start) / mib:.0f} MiB not returned ({start / mib:.0f} → {end / mib:.0f} MiB)")
    finally:
        stop_app(server)
