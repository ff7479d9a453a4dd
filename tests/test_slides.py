"""Slides made on the server (core/figures/slides.py, issue 14): the Explore view as a PNG at 2x
or 3x and an animated GIF over a step range, opened with Pillow as a user's slide program would:
their size, frames and frame times, maps as crisp blocks in the app's colours, the cursor at its
step, the caption in the files, their names; and the Explore page's buttons, which draw nothing
until they are pressed."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.figures.explore import _map_data, map_rows
from core.figures.slides import MAX_GIF_STEPS, SPEEDS, Slide, SlideText, map_levels
from core.figures.style import CURSOR_COLOR, HANDOFF_COLOR, heatmap_png
from core.io import exports
from core.io.exports import explore_slide, explore_view, figure_html, slide_gif, slide_png
from core.views import explore as ex

ROOT = Path(__file__).resolve().parents[1]
VIEW = ex.ExploreState(task="adding", cell="lstm", source="random", seed=3, sample=5, len=24,
                       unit=2, t=4)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def traced(state: ex.ExploreState):
    choice = ex.resolve_model(state)
    result = ex.run(state.traced(), choice, ex.make_example(state))
    units, _ = ex.picked_units(state, result.trace)
    return explore_view(state, choice, result), choice, result, units


@pytest.fixture(scope="module")
def adding():
    view, choice, result, units = traced(VIEW)
    return view, choice, result, explore_slide(result, view, units, 2)


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def app_colours(z: np.ndarray, lo: float, hi: float, scale: str) -> np.ndarray:
    """The app's own map (heatmap_png, one pixel per unit and step, row 0 = the top unit)."""
    uri = heatmap_png(z, lo, hi, scale, min_width=1, min_height=1)
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")
    return np.asarray(image)


def blocks(size: int, n: int) -> list[tuple[int, int]]:
    """[start, end) pixels of each of n blocks drawn over `size` pixels (map_levels' rule)."""
    index = (np.arange(size) * n) // size
    return [(int(np.argmax(index == k)), int(size - np.argmax(index[::-1] == k))) for k in range(n)]


# -- the PNG ----------------------------------------------------------------------------------


def test_the_png_is_a_1920_or_2880_wide_slide_with_its_caption(adding):
    view, choice, _, slide = adding
    image = Image.open(io.BytesIO(slide_png(slide, view)))
    assert image.format == "PNG" and image.size == (1920, slide.layout.height)
    assert image.height >= 1080  # at least a 16:9 slide
    text = image.text
    assert text["Title"].startswith("Adding problem · LSTM · UNTRAINED LSTM")
    assert choice.label in text["Title"]
    assert "input (sample seed 5, 24 steps): " in text["Description"]
    assert "step t = 4 of 0–23" in text["Description"]
    assert json.loads(text["gatescope.view"]) == view.fields()

    _, _, result, units = traced(VIEW)
    big = Image.open(io.BytesIO(slide_png(explore_slide(result, view, units, 3), view)))
    assert big.width == 2880 and big.height >= 1620  # 16:9 or taller
    assert big.text["Title"] == text["Title"]


def test_a_shipped_models_slide_names_its_score():
    view, choice, result, units = traced(replace(VIEW, source="shipped", len=12))
    assert view.score and view.score in view.title_line()
    image = Image.open(io.BytesIO(slide_png(explore_slide(result, view, units, 2), view)))
    assert "held-out MSE" in image.text["Title"]


def test_every_map_is_one_crisp_block_per_unit_and_step_in_the_apps_colours(adding):
    view, _, result, slide = adding
    pixels = np.asarray(Image.open(io.BytesIO(slide_png(slide, view))).convert("RGB"))
    cursor = np.zeros(pixels.shape[1], bool)
    for box in slide.cursor_boxes(view.t):
        cursor[box.x0:box.x1] = True
    T, H = result.trace.seq_len, result.trace.hidden_size
    for box, (key, _, scale, (lo, hi)) in zip(slide.layout.maps, map_rows(result.trace)):
        z = _map_data(result.trace, key, 0, 0).T  # (H, T)
        want = app_colours(z, lo, hi, scale)  # row 0: unit H - 1
        drawn = pixels[box.y0:box.y1, box.x0:box.x1]
        for u, (y0, y1) in enumerate(blocks(box.height, H)):
            for t, (x0, x1) in enumerate(blocks(box.width, T)):
                block = drawn[y0:y1, x0:x1][:, ~cursor[box.x0 + x0:box.x0 + x1]]
                # unit H - 1 - u is drawn in block row u (unit 0 at the bottom, as in the app)
                assert (block == want[u, t]).all(), (key, H - 1 - u, t)
    # whole pixels per block here (24 steps on 1,000 px, 64 units on 64 px): all the same size
    widths = {x1 - x0 for x0, x1 in blocks(slide.layout.maps[0].width, T)}
    assert len(widths) == 1 and widths.pop() >= 30


def test_neighbouring_blocks_of_different_values_meet_without_a_blend():
    # One unit, values alternating -1 / +1 from step to step: red and blue columns.
    width, height = 200, 12
    z = np.tile(np.array([-1.0, 1.0], np.float32), 10)[None, :]  # (1 unit, 20 steps)
    levels, missing = map_levels(z, -1.0, 1.0, width, height)
    assert not missing.any()
    assert set(np.unique(levels)) == {0, 255}  # only the two ends of the scale: no blend
    columns = levels[0]
    assert (np.abs(np.diff(columns.astype(int))) > 0).sum() == 19  # 19 sharp edges, no ramp


def test_nan_and_inf_are_grey_and_do_not_stop_a_slide(adding):
    view, _, result, _ = adding
    trace = replace(result.trace, hidden=result.trace.hidden.copy())
    trace.hidden[0, 0, 5:8, :] = np.nan
    trace.hidden[0, 0, 9, :] = np.inf
    bad = replace(result, trace=trace)
    slide = explore_slide(bad, view, [2, 3, 4], 2)
    pixels = np.asarray(Image.open(io.BytesIO(slide.png(view.t))).convert("RGB"))
    box = slide.layout.maps[0]  # hidden state
    for t in (6, 9):
        x0, x1 = slide.layout.step_columns(trace.seq_len, t)
        assert (pixels[box.y0 + 2, (x0 + x1) // 2] == (160, 160, 160)).all()


def test_the_cursor_marks_step_t_and_the_panel_shows_its_numbers(adding):
    view, _, result, slide = adding
    for t in (0, 11, 23):
        frame = np.asarray(slide.frame(t))
        for box in slide.cursor_boxes(t):
            assert (frame[box.y0:box.y1, box.x0:box.x1] == rgb(CURSOR_COLOR)).all()
        assert f"step t = {t} of 0–23" in slide.step_line(t)
    # the panel's numbers change with t: the frames differ there
    a, b = (np.asarray(slide.frame(t)) for t in (3, 15))
    panel = slide.layout.panel
    assert (a[panel.y0:panel.y1, panel.x0:panel.x1] != b[panel.y0:panel.y1, panel.x0:panel.x1]).any()


def test_an_encoder_decoder_slide_marks_the_hand_off():
    view, _, result, units = traced(ex.ExploreState(task="copy", cell="gru", source="random",
                                                    len=6))
    assert result.handoff is not None
    slide = explore_slide(result, view, units, 2)
    frame = np.asarray(slide.frame(0))
    x = slide.layout.step_columns(result.trace.seq_len, result.handoff)[0]
    column = frame[slide.layout.units_row.y0:slide.layout.units_row.y1, x]
    assert (column == rgb(HANDOFF_COLOR)).all(axis=1).sum() > 10  # dashes down the rows


# -- the GIF ----------------------------------------------------------------------------------


def test_the_gif_has_one_frame_per_step_at_the_chosen_speed(adding):
    view, _, result, slide = adding
    data = slide_gif(slide, 6, 13, 4)
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.size == (1920, slide.layout.height)
    assert gif.n_frames == 8 and gif.info["loop"] == 0
    durations = []
    for k in range(gif.n_frames):
        gif.seek(k)
        durations.append(gif.info["duration"])
        frame = np.asarray(gif.convert("RGB"))
        for box in slide.cursor_boxes(6 + k):
            assert (frame[box.y0:box.y1, box.x0:box.x1] == rgb(CURSOR_COLOR)).all()
    assert durations == [250] * 8  # 4 steps per second
    assert view.title_line() in gif.info["comment"].decode()


def test_each_gif_frame_is_the_whole_slide_at_its_step(adding):
    # A frame is written as what changed since the one before, the rest transparent: read
    # back, each must be exactly the slide drawn alone at its step (a GIF of that step).
    _, _, _, slide = adding
    gif = Image.open(io.BytesIO(slide.gif(2, 9, 10)))
    for k in (0, 3, 7):
        gif.seek(k)
        alone = Image.open(io.BytesIO(slide.gif(2 + k, 2 + k, 10))).convert("RGB")
        assert (np.asarray(gif.convert("RGB")) == np.asarray(alone)).all(), k


def test_the_gifs_maps_are_crisp_blocks_too(adding):
    _, _, result, slide = adding
    gif = Image.open(io.BytesIO(slide.gif(0, 1, 10)))
    frame = np.asarray(gif.convert("RGB"))
    T, H = result.trace.seq_len, result.trace.hidden_size
    cursor = np.zeros(frame.shape[1], bool)
    for box in slide.cursor_boxes(0):
        cursor[box.x0:box.x1] = True
    for box in slide.layout.maps:
        drawn = frame[box.y0:box.y1, box.x0:box.x1]
        for y0, y1 in blocks(box.height, H)[::7]:
            for x0, x1 in blocks(box.width, T):
                block = drawn[y0:y1, x0:x1][:, ~cursor[box.x0 + x0:box.x0 + x1]]
                assert len(np.unique(block.reshape(-1, 3), axis=0)) <= 1


@pytest.mark.parametrize("start, stop, speed, words", [
    (5, 4, 10, "before its first"), (0, 24, 10, "from 0 to 23"), (-1, 3, 10, "from 0 to 23"),
    (0, 3, 3, "the speed is one of"), (0, 3, 0, "the speed is one of"),
])
def test_a_bad_range_or_speed_is_a_clear_message(adding, start, stop, speed, words):
    with pytest.raises(ValueError, match=words):
        adding[3].gif(start, stop, speed)


def test_a_gif_has_at_most_its_limit_of_steps():
    view, _, result, units = traced(replace(VIEW, len=MAX_GIF_STEPS + 1))
    slide = explore_slide(result, view, units, 2)
    with pytest.raises(ValueError, match=f"at most {MAX_GIF_STEPS} steps"):
        slide.gif(0, MAX_GIF_STEPS, 10)


def test_a_scale_other_than_2x_or_3x_is_refused(adding):
    _, _, result, slide = adding
    with pytest.raises(ValueError, match="2x or 3x"):
        Slide(result.trace, result.input_sequence, SlideText("a", "b"), scale=1)


# -- names and the HTML -----------------------------------------------------------------------


def test_file_names_say_the_view_the_step_range_the_speed_and_the_size(adding):
    view = adding[0]
    base = "gatescope_adding_lstm_random-seed3_sample5_len24_layer0_unit2"
    assert view.stem() == f"{base}_t4"
    assert view.slide_stem(2) == f"{base}_t4_2x" and view.slide_stem(3) == f"{base}_t4_3x"
    assert view.animation_stem(6, 13, 4, 2) == f"{base}_t6-13_4-steps-per-s_2x"
    ranked, _, _, _ = traced(replace(VIEW, pick="most variable"))
    assert f"_layer0_most-variable_unit{ranked.unit}_t4" in ranked.stem()


def test_the_html_carries_the_slides_context(adding):
    import plotly.graph_objects as go

    view = adding[0]
    page = figure_html(go.Figure(go.Scatter(y=[1, 2])), view=view)
    assert '<p id="gatescope-context"' in page
    assert view.title_line() in page.replace("&amp;", "&")
    assert "input (sample seed 5, 24 steps): " in page and view.input_text[:20] in page


# -- the Explore page --------------------------------------------------------------------------


def test_the_explore_page_offers_the_slide_and_draws_it_only_when_pressed(monkeypatch):
    from streamlit.delta_generator import DeltaGenerator
    from streamlit.testing.v1 import AppTest

    import ui.downloads

    made: list[str] = []
    offered: dict[str, tuple] = {}
    for name in ("slide_png", "slide_gif"):
        real = getattr(exports, name)
        monkeypatch.setattr(ui.downloads, name,
                            lambda *a, _real=real, _name=name: made.append(_name) or _real(*a))
    real_button = DeltaGenerator.download_button

    def button(self, label, data, file_name=None, *args, **kwargs):
        offered[label] = (data, file_name, kwargs.get("disabled", False))
        return real_button(self, label, data, file_name, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", button)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    for key, value in dict(task="adding", cell="gru", source="random", seed=1, len=30,
                           t=7).items():
        at.query_params[key] = str(value)
    at.run()
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Slide at t = 7 (.png)" in labels and "Animation, steps 0–29 (.gif)" in labels
    assert made == []  # nothing drawn until a button is pressed

    at.slider(key=ui.downloads.STEPS_KEY).set_value((3, 12))
    at.selectbox(key=ui.downloads.SPEED_KEY).set_value(SPEEDS[-1])
    at.run()
    assert not at.exception and made == []
    png_data, png_name, _ = offered["Slide at t = 7 (.png)"]
    gif_data, gif_name, disabled = offered["Animation, steps 3–12 (.gif)"]
    stem = "gatescope_adding_gru_random-seed1_sample0_len30_layer0_unit0"
    assert png_name == f"{stem}_t7_2x.png" and not disabled
    assert gif_name == f"{stem}_t3-12_{SPEEDS[-1]}-steps-per-s_2x.gif"

    png = Image.open(io.BytesIO(png_data()))  # the press
    gif = Image.open(io.BytesIO(gif_data()))
    assert made == ["slide_png", "slide_gif"]
    assert png.size[0] == 1920 and "step t = 7" in png.text["Description"]
    assert gif.n_frames == 10 and gif.info["duration"] == 1000 // SPEEDS[-1]


def test_an_animation_over_its_limit_is_not_offered(monkeypatch):
    from streamlit.testing.v1 import AppTest

    import ui.downloads

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    for key, value in dict(task="adding", source="random", len=MAX_GIF_STEPS + 100).items():
        at.query_params[key] = str(value)
    at.run()
    at.slider(key=ui.downloads.STEPS_KEY).set_value((0, MAX_GIF_STEPS + 99)).run()
    assert not at.exception
    gif = next(b for b in at.get("download_button") if b.proto.label.startswith("Animation"))
    assert gif.proto.disabled
    assert any(f"at most {MAX_GIF_STEPS} steps" in c.value for c in at.caption)


def test_the_warm_up_draws_a_slide_without_a_view():
    from core.figures.slides import warm_up

    warm_up()  # what the page runs in the background before any press: it must not raise


def test_the_pages_slide_warm_up_starts_once_and_only_after_its_delay(monkeypatch):
    """Not while the visitor's browser is still drawing the page that started it (it took
    the cores the browser needed: benchmarks/ui_speed.py's cold start)."""
    import threading
    import time

    from ui import downloads

    ran = []
    monkeypatch.setattr(downloads, "warm_up", lambda: ran.append(time.monotonic()))
    monkeypatch.setattr(downloads, "_warmed", False)
    monkeypatch.setattr(downloads, "SLIDES_WARM_UP_DELAY_S", 0.3)
    earlier = set(threading.enumerate())  # an earlier page's test may have started its own
    started = time.monotonic()
    downloads._warm_up_once()
    downloads._warm_up_once()  # a second page: no second warm-up
    warming = [t for t in threading.enumerate()
               if t.name == "gatescope-slides-warm-up" and t not in earlier]
    assert len(warming) == 1 and not ran
    warming[0].join(5)
    assert len(ran) == 1 and ran[0] - started >= 0.3
