"""Explore's slide downloads in real Chromium: the PNG and the GIF arrive, made on the server
when their buttons are pressed, named for the view, the size and frames a slide program will
show (issue 14)."""

from __future__ import annotations

import pytest
from PIL import Image

from harness import choose_option, shot, wait_for_app

pytestmark = pytest.mark.e2e

CHART = ".js-plotly-plot"


def test_slide_png_and_gif_download_from_explore(page, app_url, artifacts):
    page.goto(f"{app_url}/?task=agreement&cell=gru&source=random&seed=2&t=3")
    wait_for_app(page)
    page.wait_for_selector(CHART, timeout=60_000)
    png_button = page.get_by_role("button", name="Slide at t = 3 (.png)")
    png_button.scroll_into_view_if_needed()
    shot(page, artifacts, "slides-downloads")
    with page.expect_download(timeout=60_000) as download:
        png_button.click()
    assert download.value.suggested_filename.startswith("gatescope_agreement_gru_random-seed2_")
    assert download.value.suggested_filename.endswith("_t3_2x.png")
    png = Image.open(download.value.path())
    assert png.format == "PNG" and png.width == 1920 and "step t = 3" in png.text["Description"]
    png.save(artifacts / "slide-agreement-gru.png")

    # Fewer steps, faster: the GIF has one frame per chosen step at that speed.
    choose_option(page, page.get_by_label("Speed (steps/s)"), "20")
    wait_for_app(page)
    gif_button = page.get_by_role("button", name="Animation, steps")
    with page.expect_download(timeout=60_000) as download:
        gif_button.click()
    name = download.value.suggested_filename
    assert "_20-steps-per-s_2x.gif" in name, name
    gif = Image.open(download.value.path())
    first, last = (int(v) for v in name.split("_t")[-1].split("_")[0].split("-"))
    assert gif.format == "GIF" and gif.n_frames == last - first + 1
    assert gif.info["duration"] == 50
    assert not page.locator('[data-testid="stException"]').count()
