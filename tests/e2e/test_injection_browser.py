"""No crafted link, CSV column name or file name makes a visitor's browser fetch anything, follow
a link someone else wrote, or draw their Markdown (issue 19, item 7).

A local HTTP server stands in for an attacker's: every probe below points its images and links
at it, and after each page has rendered the server must have had no request. The text must be
shown as typed (literal characters), with no image, no link to it and no LaTeX drawn.

One server and one browser page serve the whole file; each probe opens its own link (a new
Streamlit session), and the server keeps every path it was asked for, so a request that came
late would still fail the probe after it.
"""

from __future__ import annotations

import http.server
import io
import threading
import urllib.parse

import pytest
import torch
from safetensors.torch import save

from harness import wait_for_app

pytestmark = pytest.mark.e2e


class Trap:
    """An HTTP server on a free port that records every path it is asked for."""

    def __init__(self):
        self.asked: list[str] = []
        self.heard = threading.Condition()
        self.sentinels = 0
        trap = self

        class Recorder(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                with trap.heard:
                    trap.asked.append(self.path)
                    trap.heard.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fetched_by(self, page) -> list[str]:
        """Every path the page (or an earlier one) asked the trap for, other than sentinels.
        Instead of a fixed pause for a request to leave the browser: the page loads one more
        image from the trap, a sentinel, and once the trap has it, the images the page had
        started loading before it have been asked for too."""
        self.sentinels += 1
        sentinel = f"/sentinel-{self.sentinels}.png"
        page.evaluate("(url) => { new Image().src = url; }", f"http://{self.host}{sentinel}")
        with self.heard:
            assert self.heard.wait_for(lambda: sentinel in self.asked, timeout=30), \
                "the sentinel image never reached the trap"
            return [path for path in self.asked if not path.startswith("/sentinel-")]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def trap():
    server = Trap()
    yield server.host, server
    server.close()


@pytest.fixture(scope="module")
def page(browser):
    """One page for the file (conftest's is a new context a test, with a screenshot after)."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    yield context.new_page()
    context.close()


def payloads(host: str) -> dict[str, str]:
    """One probe per thing Markdown in Streamlit can do with text (each a single token, since the
    number-reading tasks quote the first token they cannot read)."""
    return {
        "image": f"![x](http://{host}/image.png)",
        "link": f"go[log_in](http://{host}/phish)",
        "bare_url": f"http://{host}/bare",
        "html_image": f"<img/src=http://{host}/tag.png>",
        "latex": "$x^2+y_1$",
        "colour": ":red[alarm]!",
    }


def assert_inert(page, trap: Trap, host: str, typed: str) -> None:
    """The page shows `typed` literally, draws nothing from it, and fetched nothing."""
    fetched = trap.fetched_by(page)
    assert fetched == [], f"the browser fetched {fetched}"
    assert page.locator(f'img[src*="{host}"]').count() == 0
    assert page.locator(f'a[href*="{host}"]').count() == 0
    assert page.locator(".katex").count() == 0, "LaTeX was drawn"
    assert page.locator('[data-testid="stMarkdownColoredText"], span[class*="red"]').count() == 0
    # zero-width spaces break what GFM would link (ui/text.py): invisible, so not counted
    assert typed in page.inner_text("body").replace("\u200b", ""), f"{typed!r} not shown as typed"


def open_crafted_link(page, url: str, task: str, typed: str, answer: str) -> None:
    """Open `url` with `typed` as the page's typed input for `task`, and wait until the page
    has said `answer` about it."""
    query = urllib.parse.urlencode({"task": task, "input": "text", "text": typed})
    page.goto(f"{url}?{query}")
    wait_for_app(page)
    page.get_by_text(answer).first.wait_for(timeout=90_000)


@pytest.mark.parametrize("probe", list(payloads("h")))
def test_a_crafted_explore_link_shows_its_text_as_text(page, app_url, trap, probe):
    host, recorder = trap
    typed = payloads(host)[probe]
    open_crafted_link(page, f"{app_url}/", "adding", typed, "could not read")
    assert_inert(page, recorder, host, typed)


def test_a_crafted_compare_link_shows_its_text_as_text(page, app_url, trap):
    host, recorder = trap
    typed = payloads(host)["image"]
    open_crafted_link(page, f"{app_url}/compare", "adding", typed, "could not read")
    assert_inert(page, recorder, host, typed)


def test_unknown_words_from_a_link_are_listed_as_text(page, app_url, trap):
    host, recorder = trap
    typed = f"the_cat_![x](http://{host}/word.png) was"
    open_crafted_link(page, f"{app_url}/", "agreement", typed, "Not in the vocabulary")
    assert recorder.fetched_by(page) == [] and page.locator(f'img[src*="{host}"]').count() == 0


def test_a_csv_column_name_is_shown_as_text(page, app_url, trap):
    host, recorder = trap
    name = payloads(host)["image"]
    csv = f'"{name}"\nnot a number\n'.encode()
    page.goto(f"{app_url}/?task=airline&input=csv")
    wait_for_app(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        {"name": "passengers.csv", "mimeType": "text/csv", "buffer": csv})
    wait_for_app(page)
    page.get_by_text("no column of numbers").first.wait_for(timeout=60_000)
    assert_inert(page, recorder, host, name)


def test_an_uploaded_file_name_is_shown_as_text(page, app_url, trap):
    host, recorder = trap
    # A file name cannot hold "/", but browsers read "http:\\host\path" as "http://host/path".
    name = f"![w](http:\\\\{host}\\file.png) $y$ :red[x].safetensors"
    weights = save(torch.nn.GRU(2, 4).state_dict())
    page.goto(f"{app_url}/?task=adding&source=upload")
    wait_for_app(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(
        {"name": name, "mimeType": "application/octet-stream", "buffer": io.BytesIO(weights).read()})
    wait_for_app(page)
    page.get_by_text("your GRU from").first.wait_for(timeout=60_000)
    # (the browser hands the server the name with its backslashes halved: check the rest)
    assert_inert(page, recorder, host, "file.png) $y$ :red[x].safetensors")
