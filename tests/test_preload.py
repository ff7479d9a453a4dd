"""ui/preload.py: the page's HTML (and, where it did not, its first element) imports Streamlit's
chart and widget chunks, so that the browser loads and runs them while the server works on the
first run (cold start)."""

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


PAGE = (b"<!DOCTYPE html><html><head><title>Streamlit</title>"
        b'<script type="module" src="./static/js/index.js"></script></head>'
        b'<body><div id="root"></div></body></html>')


def run_through_the_middleware(content_type: bytes, body: bytes = b"...", headers: tuple = (),
                               method: str = "GET", status: int = 200) -> list[dict]:
    """The messages a response of `content_type` with `body` (sent in two parts) leaves
    `PreloadChartCode` with. Its coroutine is driven by hand: nothing in it waits, and the
    suite's other tests may leave an event loop running in this thread (asyncio.run then
    refuses)."""

    async def page(scope, receive, send):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), *headers]})
        half = len(body) // 2
        await send({"type": "http.response.body", "body": body[:half], "more_body": True})
        await send({"type": "http.response.body", "body": body[half:]})

    sent = []

    async def send(message):
        sent.append(message)

    running = preload.PreloadChartCode(page)(
        {"type": "http", "method": method, "path": "/compare"}, None, send)
    with pytest.raises(StopIteration):
        running.send(None)
    return sent


def test_every_page_sent_has_the_browser_fetch_the_chart_code_at_once():
    headers = dict(run_through_the_middleware(b"text/html; charset=utf-8")[0]["headers"])
    assert headers[b"link"] == f"<static/js/{preload._chunks()[0]}>; rel=modulepreload".encode()
    # the page's own relative URL: under any path the page is served at, the same module
    # as the page's later import
    assert not headers[b"link"].startswith(b"</")


def test_every_page_runs_the_chart_code_and_the_warm_up_from_its_head():
    sent = run_through_the_middleware(
        b"text/html; charset=utf-8", PAGE,
        ((b"content-length", str(len(PAGE)).encode()), (b"etag", b'"abc"')))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    head = body[:body.index(b"</head>")].decode()
    script = re.search(r'<script type="module">(.*)</script>$', head, re.S).group(1)
    assert script == preload.preload_script("head")
    # after the page's own script: its module map has the page's modules when the chunks load
    assert head.index("index.js") < head.index(script)
    assert body.replace(f'<script type="module">{script}</script>'.encode(), b"") == PAGE
    headers = dict(start["headers"])
    assert headers[b"content-length"] == str(len(body)).encode()
    assert headers[b"etag"] == b'"abc-preload"'  # not the file's: that names the page without


def test_nothing_but_a_page_carries_it():
    sent = run_through_the_middleware(b"application/javascript", PAGE)
    assert b"link" not in dict(sent[0]["headers"])
    assert b"".join(m.get("body", b"") for m in sent[1:]) == PAGE


@pytest.mark.parametrize("method, status", [("HEAD", 200), ("GET", 304)])
def test_an_answer_without_the_pages_body_keeps_its_headers(method, status):
    # a HEAD's content-length is the page's; a 304 has no body to add to
    length = (b"content-length", str(len(PAGE)).encode())
    sent = run_through_the_middleware(b"text/html; charset=utf-8", b"", (length,), method, status)
    headers = dict(sent[0]["headers"])
    assert headers[b"content-length"] == length[1] and b"link" in headers
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b""
