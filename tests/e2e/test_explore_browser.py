"""The Explore page in real Chromium: it opens animating, switches cells and tasks, plays,
scrubs, downloads, and never shows an exception."""

from __future__ import annotations

import re
import time

import pytest

from harness import choose_option, shot, wait_for_app, wait_until

pytestmark = pytest.mark.e2e

CHART = ".js-plotly-plot"


# The time cursor's x position in the chart's data (the cursor is the trace on axis y99).
CURSOR_X = """() => { const gd = document.querySelector('.js-plotly-plot');
                      return gd._fullData.filter(t => t.yaxis === 'y99')[0].x[0]; }"""


def cursor_x(page) -> float:
    return page.evaluate(CURSOR_X)


def upload_weights(page, url: str, weights) -> str:
    """Open `url` (an upload view), give the uploader the file, wait for the chart; the page's
    text."""
    page.goto(url)
    wait_for_app(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(weights))
    wait_for_app(page)
    page.wait_for_selector(CHART)
    return page.inner_text("body")


def map_images(page) -> int:
    return page.locator(f"{CHART} .layer-below image, {CHART} image").count()


def test_switch_cell_and_task_play_and_scrub(page, app_url, artifacts):
    page.goto(f"{app_url}/?task=adding&cell=gru&source=random")
    wait_for_app(page)
    page.wait_for_selector(CHART)
    body = page.inner_text("body")
    assert "update gate z" in body or page.locator(f"{CHART} text", has_text="update gate").count()
    # Switch the cell in the sidebar, as a user would.
    page.get_by_text("RNN (vanilla)").click()
    # the link follows the choice once the rerun it starts has run (a full run read the URL
    # once before that rerun had begun)
    page.wait_for_url(re.compile("cell=rnn"), timeout=30_000)
    wait_for_app(page)
    # Pause any autoplay, then scrub with the slider: the cursor follows.
    page.locator(f"{CHART} .updatemenu-button").nth(1).click()
    rail = page.locator(f"{CHART} .slider-rail-rect").bounding_box()
    page.mouse.click(rail["x"] + rail["width"] * 0.75, rail["y"] + rail["height"] / 2)
    wait_until(page, f"() => ({CURSOR_X})() > 30", "the cursor follows the slider")
    # Play moves it further in the browser, with no server round trip.
    before = cursor_x(page)
    page.locator(f"{CHART} .updatemenu-button").nth(0).click()
    wait_until(page, f"x0 => ({CURSOR_X})() !== x0", "Play moves the cursor", arg=before)
    shot(page, artifacts, "adding-rnn-playing")
    # Another task with words.
    page.goto(f"{app_url}/?task=sentiment&cell=lstm&source=random")
    wait_for_app(page)
    page.wait_for_selector(CHART)
    shot(page, artifacts, "sentiment-lstm")


def downloads_and_bad_input(page, artifacts) -> None:
    """On an LSTM's view; the view reruns (last: it shows bad input)."""
    with page.expect_download() as dl:
        page.get_by_role("button", name="Trace (.csv)").click()
    path = dl.value.path()
    header = open(path).readline()
    assert header.startswith("t,token,saliency,grad_h_norm,grad_c_norm,h[0]")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Figure (standalone .html)").click()
    html = open(dl.value.path(), encoding="utf-8").read()
    assert "Plotly.newPlot" in html and not re.search(r"<script[^>]+src=", html)
    assert len(html) > 3_000_000  # plotly.js is embedded: the file works offline
    # Bad typed input: a clear message, the last good view stays.
    page.get_by_text("my own text / numbers").click()
    wait_for_app(page)
    page.get_by_role("textbox", name="Your input").fill("this is not a number list")
    page.keyboard.press("Control+Enter")
    wait_for_app(page)
    # the message is the outcome to wait for: on a busy machine the rerun had not yet started
    # when wait_for_app's moment had passed, and the page read at once still showed the view
    page.get_by_text("Showing your last good view instead.").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stAlert"]').count() >= 1
    assert page.locator(CHART).count() == 1
    shot(page, artifacts, "bad-input")


def test_uploads_own_weights_a_file_name_that_would_reverse_and_two_modules(
        page, app_url, artifacts, tmp_path):
    """One upload view, given three files in turn (each new file replaces the one there): a
    2-layer LSTM of one's own is traced; an uploaded file's name cannot reverse the caption; a
    file with two recurrent modules traces one, the other is picked and its view downloads."""
    import io

    import numpy as np
    import torch
    from safetensors.torch import save_file

    weights = tmp_path / "my_lstm.safetensors"
    save_file(torch.nn.LSTM(2, 8, num_layers=2).state_dict(), str(weights))
    body = upload_weights(page, f"{app_url}/?task=adding&source=upload&len=25", weights)
    assert "your LSTM from my_lstm.safetensors" in body and "2 layer(s)" in body
    assert "Layer" in body  # two layers: the layer picker appears
    assert map_images(page) >= 6
    shot(page, artifacts, "upload")

    # a file name with a right-to-left override, which would show the caption reversed
    gru = tmp_path / "w.safetensors"
    save_file(torch.nn.GRU(2, 4).state_dict(), str(gru))
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]').first
    uploader.set_input_files(files=[{
        "name": "\u202egnp.safetensors", "mimeType": "application/octet-stream",
        "buffer": gru.read_bytes()}])
    wait_until(page, "() => document.body.innerText.includes('your GRU from')",
               "the new file is traced")
    wait_for_app(page)
    captions = page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
    ours = [c for c in captions if "your GRU from" in c]
    assert ours and "gnp.safetensors" in ours[0] and "\u202e" not in ours[0]

    # two recurrent modules: an encoder's GRU and a decoder's LSTM
    torch.manual_seed(0)
    encoder, decoder = torch.nn.GRU(2, 4), torch.nn.LSTM(2, 5)
    state = ({f"encoder.rnn.{k}": v for k, v in encoder.state_dict().items()}
             | {f"decoder.{k}": v for k, v in decoder.state_dict().items()})
    weights = tmp_path / "seq2seq.safetensors"
    save_file(state, str(weights))
    uploader.set_input_files(str(weights))
    wait_until(page, "() => document.body.innerText.includes('from seq2seq')",
               "the new file is traced")
    wait_for_app(page)
    page.wait_for_selector(CHART)
    body = page.inner_text("body")
    assert "your LSTM from seq2seq.safetensors, module decoder" in body.replace("`", "")
    assert "Nonlinearity (vanilla RNN only)" in body
    # Pick the encoder in the module picker: the page traces the GRU.
    choose_option(page, page.locator('[data-testid="stSelectbox"]')
                  .filter(has_text="Recurrent module"), re.compile(r"^encoder\.rnn: GRU"))
    wait_for_app(page)
    wait_until(page, "() => document.body.innerText.includes('your GRU from seq2seq')",
               "the picked module is traced")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Trace (.npz)").click()
    name = dl.value.suggested_filename
    assert name.startswith("gatescope_adding_gru_upload-") and "_len25_" in name, name
    npz = np.load(io.BytesIO(open(dl.value.path(), "rb").read()))
    assert npz["view_cell"].item() == "gru" and "module `encoder.rnn`" in npz["view_model"].item()
    assert page.locator('[data-testid="stException"]').count() == 0
    shot(page, artifacts, "upload-two-modules")


PLAYING = """() => { const gd = document.querySelector('.js-plotly-plot');
                     return !!(gd && gd._transitionData && gd._transitionData._animationRaf); }"""
STOPPED = f"() => !({PLAYING})()"


def playing(page) -> bool:
    return page.evaluate(PLAYING)


def animation_errors(page) -> list[str]:
    """Uncaught errors, less plotly.js's rejected promise when Pause interrupts an animation
    (it rejects with `undefined`: nothing went wrong)."""
    return [e for e in page.js_errors if e != "undefined"]


def test_the_landing_view_animates_and_a_change_or_another_page_while_it_plays_throws_nothing(
        page, browser, app_url, artifacts):
    """The bare landing page animates a trained LSTM with no clicks, but not for a visitor whose
    system asks for reduced motion; a change or another page while it plays throws nothing."""
    # The reduced-motion visitor's landing page opens first, in a browser context of its own,
    # and is looked at once the other checks are done, at least 2 s after its chart was drawn.
    reduced = browser.new_context(viewport={"width": 1400, "height": 900},
                                  reduced_motion="reduce")
    try:
        still = reduced.new_page()
        still.goto(app_url)  # the bare landing page, which would play otherwise
        wait_for_app(still)
        still.wait_for_selector(f"{CHART} .updatemenu-button")
        drawn = time.monotonic()
        landing_view_animates_a_trained_lstm(page, app_url, artifacts)
        a_change_or_another_page_while_the_landing_view_plays_throws_nothing(page)
        still.wait_for_timeout(max(0, 2000 - 1000 * (time.monotonic() - drawn)))
        assert still.evaluate("document.visibilityState") == "visible"  # its timers ran
        assert not playing(still)
    finally:
        reduced.close()


def landing_view_animates_a_trained_lstm(page, app_url, artifacts) -> None:
    page.goto(app_url)
    wait_for_app(page)
    page.wait_for_selector(CHART, timeout=60_000)
    # the line that names the model is sent after the figure: wait for it, not just the chart
    page.get_by_text("shipped trained LSTM").first.wait_for(timeout=30_000)
    assert map_images(page) >= 6  # h, c and four gates
    # plotly.js drew its warm-up figure off screen once (ui/preload.py), from the page's head,
    # and threw it away
    assert page.evaluate("() => document.__gatescopePlotlyWarm") == "head"
    assert page.locator('div[style*="-10000px"]').count() == 0
    wait_until(page, f"x0 => ({CURSOR_X})() !== x0", "the landing view animates with no clicks",
               arg=cursor_x(page))
    shot(page, artifacts, "landing")


def a_change_or_another_page_while_the_landing_view_plays_throws_nothing(page) -> None:
    """On the bare landing page, as it opened."""
    # Without ui/animation.py's guard, plotly.js keeps animating a chart that a rerun replaced
    # or a page change removed, and throws on every frame (~200 errors each time).
    wait_until(page, PLAYING, "the landing view plays by itself", timeout_ms=30_000)
    page.locator('[data-testid="stNumberInput"]').filter(has_text="Sample seed") \
        .locator('[data-testid="stNumberInputStepUp"]').click()
    # Pausing ends plotly.js's loop on its next animation frame, which a busy 2-core CI machine
    # may take a while to run: wait for it, up to a bound, rather than a fixed 100 ms.
    wait_until(page, STOPPED, "touching a widget stops the chart before the rerun replaces it")
    wait_for_app(page)
    page.wait_for_timeout(1500)
    assert not playing(page), "no autoplay once the user has taken over"
    page.locator(f"{CHART} .updatemenu-button").nth(0).click()  # Play, then leave the page
    wait_until(page, PLAYING, "Play plays")
    page.get_by_role("link", name="Compare cells").click()
    wait_for_app(page)
    page.wait_for_timeout(1500)
    assert animation_errors(page) == []


def start_step(page) -> str:
    return page.locator('[data-testid="stNumberInput"]').filter(has_text="Start at step t") \
        .locator("input").input_value()


def press_fast(page, name: str, times: int, gap_ms: int = 30) -> None:
    """Press a button `times` times, `gap_ms` apart, as a hurried hand does: at the mouse, with
    none of Playwright's waits for the button to hold still between presses."""
    button = page.get_by_role("button", name=name)
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    for _ in range(times):
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(gap_ms)


def rapid_step_presses_while_a_chart_plays_are_all_counted(page) -> None:
    """Streamlit merges the presses of a button that arrive while a rerun is pending: 16 presses
    30 ms apart moved t by 4 to 6 (issue 19 item 9). The step buttons now step the chart in the
    browser (ui/player.js, issue 14): the first press pauses the playback where it is, every
    press counts, and nothing reruns. From a link's start step 10 (t=10), paused."""
    page.locator(f"{CHART} .updatemenu-button").nth(0).click()  # Play
    wait_until(page, PLAYING, "Play plays")
    press_fast(page, "step ▶", 1)
    wait_until(page, STOPPED, "a step pauses the playback")
    paused = cursor_x(page)
    press_fast(page, "step ▶", 15)
    wait_until(page, f"() => ({CURSOR_X})() === {paused + 15}", "all 15 presses counted")
    press_fast(page, "◀ step", 4)
    wait_until(page, f"() => ({CURSOR_X})() === {paused + 11}", "all 4 presses back counted")
    assert start_step(page) == "10" and "t=10" in page.url  # no round trip
    assert animation_errors(page) == []


def test_rapid_step_presses_while_a_chart_plays_then_downloads_and_bad_input(page, app_url,
                                                                            artifacts):
    """On a link's view of an LSTM at step 10 of 200: rapid presses of the step buttons while
    the chart plays are all counted, with no rerun; the trace and the figure download; bad
    typed input shows a clear message and keeps the last good view."""
    page.goto(f"{app_url}/?task=adding&cell=lstm&len=200&t=10&source=random")
    wait_for_app(page)
    page.wait_for_selector(CHART)
    rapid_step_presses_while_a_chart_plays_are_all_counted(page)
    downloads_and_bad_input(page, artifacts)


def text(page) -> str:
    """The page's text as read (ui.text.plain puts an invisible break after a colon)."""
    return page.inner_text("body").replace("\u200b", "")


def test_a_csv_is_read_by_its_stated_rules_in_the_browser(page, app_url, artifacts):
    page.goto(f"{app_url}/?task=airline&source=random&input=csv")
    wait_for_app(page)
    wait_until(page, "() => document.body.innerText.includes('How a CSV is read')",
               "the rules are stated under the uploader", timeout_ms=60_000)
    assert "How a CSV is read: the first row names the columns." in text(page)
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploader.set_input_files(files=[{
        "name": "european.csv", "mimeType": "text/csv",
        "buffer": "month;passengers\n1949-01;112,5\n1949-02;118,2\n1949-03;130,7\n".encode()}])
    wait_for_app(page)
    page.wait_for_selector(CHART)
    # the lines above the figure are written after it, in the same run: the run's last frame
    # can reach the test a moment before the page has rendered them (two suite runs read it so)
    wait_until(page, "() => document.body.innerText.includes('next month ≈ ')",
               "the forecast is stated above the figure")
    body = text(page)
    assert "Read as semicolon-separated, 3 rows of data; decimal comma in “passengers”." in body
    shot(page, artifacts, "csv-decimal-commas")
    # UTF-16 without its byte-order mark: NUL between every character, refused whole (a new
    # file replaces the one there)
    uploader.set_input_files(files=[{
        "name": "utf16.csv", "mimeType": "text/csv",
        "buffer": "month,passengers\n1949-01,112\n1949-02,118\n".encode("utf-16-le")}])
    wait_for_app(page)
    wait_until(page, "() => document.body.innerText.includes('NUL characters')",
               "the file is refused, saying why")
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="NUL characters")
    assert alert.count() == 1 and "last good view" in alert.inner_text()
    # the first file's column choice goes as its run ends (read as the message came, it was
    # once still there, in a suite run)
    wait_until(page, """() => ![...document.querySelectorAll('[data-testid="stSelectbox"]')]
                              .some(box => box.innerText.includes('Column'))""",
               "the refused file leaves no column to choose")
    assert "\x00" not in page.inner_text("body")


def test_the_app_fetches_nothing_from_outside_its_server(page, app_url):
    # A classroom without the internet, or a visitor who blocks third parties, sees all of it:
    # the page, a change and the tab's icon come from the app's own server (the icon had been
    # fetched from fonts.gstatic.com on every rerun).
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{app_url}/?task=adding&cell=gru&source=random")
    wait_for_app(page)
    page.wait_for_selector(CHART)
    page.get_by_text("RNN (vanilla)").click()
    page.wait_for_url(re.compile("cell=rnn"), timeout=30_000)
    wait_for_app(page)
    page.wait_for_selector(CHART)
    outside = [url for url in asked
               if not url.startswith((app_url, "data:", "blob:", "about:"))]
    assert asked and not outside
    icon = page.eval_on_selector("link[rel~='icon']", "e => e.href")
    assert icon.startswith("data:image/svg+xml")


def test_a_page_has_the_browser_fetch_the_chart_code_with_it(app_url):
    # the Link header's URL, relative to the page's, is Streamlit's Plotly chunk on this server
    import urllib.parse
    import urllib.request

    for path in ("/", "/compare"):
        with urllib.request.urlopen(app_url + path, timeout=30) as response:
            link = response.headers["link"]
            html = response.read().decode()
        target = re.fullmatch(r"<([^>]+)>; rel=modulepreload", link).group(1)
        assert "PlotlyChart." in target
        # and its head runs it (and the warm-up) once the page's own scripts have run
        head = html[:html.index("</head>")]
        assert head.index('src="./static/js/index.') < head.index(target.split("/")[-1])
        with urllib.request.urlopen(urllib.parse.urljoin(app_url + path, target),
                                    timeout=30) as chunk:
            assert chunk.status == 200 and "javascript" in chunk.headers["content-type"]


# Every Plotly.react the page makes: whether it drew a new chart, and, on a chart already
# drawn, whether its annotations survived (plotly.js redraws the whole figure, annotations
# included, when it takes the figure for a new one).
RECORD_DRAWS = """() => {
  window.__draws = [];
  (function hook() {
    if (!window.Plotly) { setTimeout(hook, 20); return; }
    if (window.Plotly.__recorded) { return; }
    const react = window.Plotly.react;
    window.Plotly.react = function (gd, ...rest) {
      const fresh = !gd._fullLayout, label = gd.querySelector && gd.querySelector('.annotation');
      const promise = react.call(this, gd, ...rest);
      Promise.resolve(promise).then(() => window.__draws.push(
        {fresh, kept: fresh || !!(label && label.isConnected)}));
      return promise;
    };
    window.Plotly.__recorded = true;
  })();
}"""


def test_a_change_draws_the_new_chart_once(page, app_url):
    # Streamlit draws a chart it mounts a second time, from a copy of the figure. With the
    # figure as the page sends it (core.figures.style.redrawable), plotly.js finds nothing new
    # in the copy and redraws nothing: that second full draw had cost 55-90 ms of every change.
    # A word task's view: its input row's trace was sent as base64 arrays, its meta an object.
    page.add_init_script(f"({RECORD_DRAWS})()")
    page.goto(f"{app_url}/?task=agreement&cell=lstm&source=random&t=3")
    wait_for_app(page)
    page.wait_for_selector(f"{CHART} image")
    wait_until(page, "() => window.__draws.length > 0", "the chart is drawn")
    for _ in range(2):
        before = page.eval_on_selector(f"{CHART} image", "e => e.getAttribute('href')")
        page.evaluate("() => { window.__draws.length = 0; }")
        page.locator('[data-testid="stNumberInput"]').filter(has_text="Sample seed").locator(
            '[data-testid="stNumberInputStepUp"]').click()
        wait_until(page, """prev => { const e = document.querySelector('.js-plotly-plot image');
                                      return e && e.getAttribute('href') !== prev; }""",
                   "the new sample's maps are drawn", arg=before, timeout_ms=30_000)
        wait_for_app(page)
        page.wait_for_timeout(500)  # Streamlit's second draw follows the first
        draws = page.evaluate("() => window.__draws")
        assert [d["fresh"] for d in draws].count(True) == 1, draws
        assert len(draws) >= 2 and all(d["kept"] for d in draws), draws


# The diagram's x_t node: its text and the width of its text and of its circle (px).
X_NODE = """() => {
  const gd = document.querySelector('.st-key-explore_chart .js-plotly-plot');
  const index = gd._fullData.findIndex(t => t.mode === 'markers+text'
                                         && Array.isArray(t.marker.size) && t.marker.size[0] >= 20);
  const group = [...gd.querySelectorAll('.scatterlayer .trace')]
    .find(g => g.__data__ && g.__data__[0].trace.index === index);
  const texts = [...group.querySelectorAll('.textpoint text')];
  const points = [...group.querySelectorAll('.points path.point')];
  const i = texts.findIndex(t => /^[a-z]/i.test(t.textContent));  // the word; the rest are numbers
  return [texts[i].textContent, texts[i].getBBox().width, points[i].getBBox().width];
}"""


def test_the_x_node_shows_the_whole_word_inside_its_circle(page, app_url):
    # The landing sentence's fourth word is "paintings": cut to the circle, it read "paintin"
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{app_url}/?t=3")
    wait_for_app(page)
    page.wait_for_selector(f"{CHART} image")
    words = re.search(r"Input:\S* (.+)", page.inner_text('[data-testid="stMain"]')).group(1).split()
    word, text_px, circle_px = page.evaluate(X_NODE)
    assert word == words[3] and len(word) > 7, (word, words[:5])
    assert text_px <= circle_px, (word, text_px, circle_px)
