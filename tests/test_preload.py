"""ui/preload.py: the page's first element imports Streamlit's chart and widget chunks, so that
the browser loads them while the server works on the first run (cold start)."""

from __future__ import annotations

import re

import pytest

from ui import preload


def test_every_chunk_the_landing_page_draws_is_found_in_this_streamlit():
    # a Streamlit that renames or merges one shows here, not as a slower cold start
    found = preload._chunks()
    assert [name.split(".")[0] for name in found] == list(preload.CHUNKS)
    assert found[0].startswith("PlotlyChart.")


def test_the_script_imports_them_all_and_warms_plotly_up_without_a_tag_in_its_text(monkeypatch):
    drawn = {}
    monkeypatch.setattr(preload, "hidden_html", lambda key, body: drawn.setdefault(key, body))
    preload.preload_plotly()
    script = re.fullmatch(r"<script>(.*)</script>", drawn["gatescope_preload"].strip(), re.S).group(1)
    for name in preload._chunks():
        assert name in script
    assert "warmUp" in script
    # Streamlit did not run a script whose text held a tag (the warm-up's "<sub>" once)
    assert not re.search(r"<[a-z/]", script)


def run_through_the_middleware(content_type: bytes) -> list[tuple[bytes, bytes]]:
    """The headers a response of `content_type` leaves `PreloadChartCode` with. Its coroutine
    is driven by hand: nothing in it waits, and the suite's other tests may leave an event loop
    running in this thread (asyncio.run then refuses)."""

    async def page(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body", "body": b"..."})

    sent = []

    async def send(message):
        sent.append(message)

    running = preload.PreloadChartCode(page)({"type": "http", "path": "/compare"}, None, send)
    with pytest.raises(StopIteration):
        running.send(None)
    return sent[0]["headers"]


def test_every_page_sent_has_the_browser_fetch_the_chart_code_at_once():
    headers = dict(run_through_the_middleware(b"text/html; charset=utf-8"))
    assert headers[b"link"] == f"<static/js/{preload._chunks()[0]}>; rel=modulepreload".encode()
    # the page's own relative URL: under any path the page is served at, the same module
    # as the page's later import
    assert not headers[b"link"].startswith(b"</")


def test_nothing_but_a_page_carries_it():
    assert b"link" not in dict(run_through_the_middleware(b"application/javascript"))
