"""Start loading Streamlit's chart and widget code in the browser before the first page arrives."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import streamlit as st

from ui.hidden import hidden_html


#: The chunks of Streamlit's frontend that the landing page (Explore) draws: each is fetched
#: only when its first element arrives, one after another from a server busy with the page's
#: first run (the widgets' chunks arrived 0.1 to 0.5 s after their elements; the chart waited
#: for them). Chart first: it is the largest (~4.7 MB).
CHUNKS = ("PlotlyChart", "Selectbox", "Radio", "Slider", "NumberInput", "Checkbox", "TextField",
          "Metric", "Button", "DownloadButton")


@functools.lru_cache(maxsize=1)
def _chunks() -> tuple[str, ...]:
    """Those of CHUNKS found under Streamlit's static/js/ (their names carry a build hash)."""
    folder = Path(st.__file__).parent / "static" / "static" / "js"
    found = [sorted(folder.glob(f"{name}.*.js")) for name in CHUNKS]
    return tuple(files[0].name for files in found if len(files) == 1)


def preload_script(origin: str) -> str | None:
    """The script that imports Streamlit's chart and widget chunks (`_chunks`) when the page is
    first idle and then draws plotly.js's warm-up figure (`_WARM_UP`), once per document, which
    then records `origin` (where the script that drew it was: "head", "element"); None where
    the chart's chunk cannot be found (another Streamlit build layout). It finds the chunks
    beside the page's own script, so it runs the same in the page's HTML and in an element."""
    names = _chunks()
    if not names or not names[0].startswith("PlotlyChart."):
        return None
    return f"""
      (function () {{
        const find = d => d.querySelector('script[src*="/static/js/"]');
        const own = find(document) || find(window.parent.document);
        if (!own) {{ return; }}
        const load = name => import(own.src.replace(/[^/]*$/, name));
        const start = () => {{
          load('{names[0]}').then(() => warmUp('{origin}')).catch(() => {{}});
          {json.dumps(names[1:])}.forEach(name => load(name).catch(() => {{}}));
        }};
        if (window.requestIdleCallback) {{ requestIdleCallback(start, {{timeout: 500}}); }}
        else {{ setTimeout(start, 0); }}
      }})();
      {_WARM_UP}"""


def preload_plotly() -> None:
    """Streamlit fetches its ~4.7 MB Plotly chunk (and each widget's) only when the first such
    element arrives, i.e. after the server has traced and built the figure. The page's HTML
    imports them already (`PreloadChartCode`); this first element does so where the HTML did
    not (a server without the middleware), and plotly.js then draws a warm-up figure, once per
    document. The browser's module map makes the page's own later imports the same, loaded
    modules. Drawn on every run, so that the page's layout never shifts; importing a loaded
    module again is free."""
    if (script := preload_script("element")) is not None:
        hidden_html("gatescope_preload", f"<script>{script}\n    </script>")


class PreloadChartCode:
    """ASGI middleware: every page the server sends has the browser fetch Streamlit's Plotly
    chunk (~4.7 MB) at once (a `Link` header), and run it and draw the warm-up figure when the
    page is first idle after its own scripts have run (`preload_script`, in the page's head),
    instead of when the page's first element asks for it (`preload_plotly`). Only a page's
    body (a GET answered 200) gets the script; any other answer for a page keeps its body and
    headers, plus the `Link`.

    The Link header alone: cold start 4.53-4.87 s -> 4.48-4.61 s (four alternated launches
    each). Running the chunk from the HTML moves its ~0.5 s of the browser's main thread, and
    the warm-up's, into the time the page waits for the server's first run; run from the first
    element, they held up the page's first render (README, "How fast the page feels"). The
    script starts them when the page is first idle, once it has mounted and asked for its
    websocket: started at once, they measured no better than the element (cold start 4.29-4.65 s
    against 4.51-4.60 s; at the first idle moment 4.27-4.44 s). The URLs are the page's own
    relative ones; the browser's module map then makes the element's import the same, loaded
    module."""

    def __init__(self, app):
        self.app = app
        names = _chunks()
        script = preload_script("head")
        self.link = (f"<static/js/{names[0]}>; rel=modulepreload".encode()
                     if script is not None else None)
        self.head = (f'<script type="module">{script}</script></head>'.encode()
                     if script is not None else None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.link is None:
            await self.app(scope, receive, send)
            return
        start: dict | None = None  # a page's response start, held until its body is whole
        body = bytearray()

        async def send_page_with_preload(message):
            nonlocal start
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if dict(headers).get(b"content-type", b"").startswith(b"text/html"):
                    message = {**message, "headers": [*headers, (b"link", self.link)]}
                    if scope.get("method") == "GET" and message.get("status") == 200:
                        start = message  # a HEAD's or a 304's headers describe no body here
                        return
            elif start is not None and message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                page = bytes(body).replace(b"</head>", self.head, 1)
                await send({**start, "headers": _resized(start["headers"], len(page))})
                message = {**message, "body": page}
            await send(message)

        await self.app(scope, receive, send_page_with_preload)


def _resized(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    """A page's headers for its body with the preload: its new length, and an entity tag of
    its own (the file's would name the page without it)."""
    sized = []
    for name, value in headers:
        if name.lower() == b"content-length":
            value = str(length).encode()
        elif name.lower() == b"etag":
            value = value[:-1] + b'-preload"' if value.endswith(b'"') else value + b"-preload"
        sized.append((name, value))
    return sized


# plotly.js's first figure in a page costs it several times what later ones do (its code's first
# runs, its fonts' and defs' set-up): 476 ms for the landing figure, 300-360 ms after this
# warm-up (cold start 4.3-4.5 s -> 4.0-4.2 s from the page's request to its chart). Once the
# chunk is loaded, a small figure with the same kinds of parts (lines, markers with text,
# arrowheads, annotations, a path, a layout image, buttons, a slider) is drawn once off screen
# and thrown away, while the page waits for the server's first run. Once per document; a
# failure leaves the page as it was. (No tag may be written in the script's text: Streamlit
# then did not run it at all, and in the page's head it would end the script; '\x3c' is the
# subscript's '<'.)
_WARM_UP = """
function warmUp(origin) {
  const win = window.parent && window.parent.document ? window.parent : window;
  const doc = win.document, Plotly = win.Plotly;
  if (!Plotly || doc.__gatescopePlotlyWarm) { return; }
  doc.__gatescopePlotlyWarm = origin;
  const div = doc.createElement('div');
  div.style.cssText = 'position:fixed;left:-10000px;top:0;width:900px;height:600px;visibility:hidden';
  doc.body.appendChild(div);
  const png = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
  const steps = ['0', '1'].map(t => ({label: t, method: 'animate', args: [[t]]}));
  const drawn = Plotly.newPlot(div, [
    {type: 'scatter', x: [0, 1, 2], y: [0, 1, 0], mode: 'lines+markers+text', text: ['a', 'b', 'c']},
    {type: 'scatter', x: [0, 1, null], y: [1, 0, null], mode: 'lines+markers', xaxis: 'x2', yaxis: 'y2',
     marker: {symbol: 'arrow', angleref: 'previous', size: [0, 10, 0]}},
  ], {
    width: 900, height: 600, xaxis: {domain: [0, 0.6]}, xaxis2: {domain: [0.7, 1], anchor: 'y2'},
    yaxis2: {anchor: 'x2'}, annotations: [{text: 'h\\x3csub>t\\x3c/sub>', x: 1, y: 1, showarrow: false}],
    shapes: [{type: 'path', path: 'M0,0L1,1L2,0', xref: 'x', yref: 'y'}],
    images: [{source: png, xref: 'x', yref: 'y', x: 0, y: 1, sizex: 2, sizey: 1, sizing: 'stretch'}],
    updatemenus: [{type: 'buttons', buttons: [{label: 'Play', method: 'animate', args: [null]}]}],
    sliders: [{steps}],
  }, {displaylogo: false});
  // plotly.js marks its charts in its synchronous part; unmarked before any other script runs,
  // this one is never taken for one of the page's (by the player, a test, a benchmark)
  div.classList.remove('js-plotly-plot');
  drawn.then(() => { Plotly.purge(div); div.remove(); }, () => div.remove());
}
"""
