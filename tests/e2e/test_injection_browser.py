"""No crafted link, CSV column name or file name makes a visitor's browser fetch anything, follow
a link someone else wrote, or draw their Markdown (issue 19, item 7).

A local HTTP server stands in for an attacker's: every probe below points its images and links
at it, and after each page has rendered the server must have had no request. The text must be
shown as typed (literal characters), with no image, no link to it and no LaTeX drawn.
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


@pytest.fixture
def trap():
    """An HTTP server on a free port that records every path it is asked for."""
    asked: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            asked.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


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


def assert_inert(page, asked: list[str], host: str, typed: str) -> None:
    """The page shows `typed` literally, draws nothing from it, and fetched nothing."""
    page.wait_for_timeout(800)  # let any image request leave the browser
    assert asked == [], f"the browser fetched {asked}"
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
    host, asked = trap
    typed = payloads(host)[probe]
    open_crafted_link(page, f"{app_url}/", "adding", typed, "could not read")
    assert_inert(page, asked, host, typed)


def test_a_crafted_compare_link_shows_its_text_as_text(page, app_url, trap):
    host, asked = trap
    typed = payloads(host)["image"]
    open_crafted_link(page, f"{app_url}/compare", "adding", typed, "could not read")
    assert_inert(page, asked, host, typed)


def test_unknown_words_from_a_link_are_listed_as_text(page, app_url, trap):
    host, asked = trap
    typed = f"the_cat_![x](http://{host}/word.png) was"
    open_crafted_link(page, f"{app_url}/", "agreement", typed, "Not in the vocabulary")
    page.wait_for_timeout(800)
    assert asked == [] and page.locator(f'img[src*="{host}"]').count() == 0


def test_a_csv_column_name_is_shown_as_text(page, app_url, trap):
    host, asked = trap
    name = payloads(host)["image"]
    csv = f'"{name}"\nnot a number\n'.encode()
    page.goto(f"{app_url}/?task=airline&input=csv")
    wait_for_app(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        {"name": "passengers.csv", "mimeType": "text/csv", "buffer": csv})
    wait_for_app(page)
    page.get_by_text("no column of numbers").first.wait_for(timeout=60_000)
    assert_inert(page, asked, host, name)


def test_an_uploaded_file_name_is_shown_as_text(page, app_url, trap):
    host, asked = trap
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
    assert_inert(page, asked, host, "file.png) $y$ :red[x].safetensors")
