"""Streamlit's dark theme (issue 14): every chart follows it. An operator-forced dark theme
left Explore's chart a white box (every figure sets its own colours) and the Gradient lab's
text white on white; core.figures.style.dark_variant makes a figure's text, grid and
background the dark page's, and ui.charts.themed applies it where the page is dark."""

from __future__ import annotations

import json
import re

import pytest
import torch

from core.figures.explore import explore_figure
from core.figures.style import FONT, LIGHT_TO_DARK, contrast_ratio, dark_variant
from core.views import explore as ex
from core.views.models import shipped

DARK_PAGE = "#0e1117"


@pytest.fixture(scope="module")
def figure() -> dict:
    torch.set_num_threads(1)
    state = ex.ExploreState(task="agreement", cell="lstm")
    result = ex.run(state, shipped("agreement", "lstm"), ex.make_example(state))
    return explore_figure(result.trace, result.input_sequence).to_dict()


def colours(obj) -> list[tuple[str, str]]:
    """(key, colour) of every single colour (not lists) in a figure part."""
    text = json.dumps(obj)
    return re.findall(r'"([a-z_]*color)": "([^"]+)"', text)


def test_no_light_page_colour_is_left(figure):
    dark = dark_variant(figure)
    left = [(k, c) for k, c in colours([dark["layout"], dark["data"]]) if c in LIGHT_TO_DARK]
    assert not left
    assert dark["layout"]["paper_bgcolor"] == dark["layout"]["plot_bgcolor"] == "rgba(0,0,0,0)"
    # the text now reads on the dark page; it read on the white one before
    assert contrast_ratio(dark["layout"]["font"]["color"], DARK_PAGE) >= 7
    assert contrast_ratio(figure["layout"]["font"]["color"], "#ffffff") >= 7
    for menu in dark["layout"]["updatemenus"] + dark["layout"]["sliders"]:
        assert contrast_ratio(menu["font"]["color"], menu["bgcolor"]) >= 7


def test_what_carries_meaning_keeps_its_colour(figure):
    dark = dark_variant(figure)
    assert dark["layout"]["images"] == figure["layout"]["images"]  # maps and colour bars
    lines = [s["line"]["color"] for s in figure["layout"]["shapes"] if s.get("type") == "path"
             and s.get("showlegend")]
    assert lines == [s["line"]["color"] for s in dark["layout"]["shapes"]
                     if s.get("type") == "path" and s.get("showlegend")]
    # the diagram's numbers keep the colour that reads on their circle; the equations'
    # numbers, on the page, turn light
    for light, frame in zip(figure["frames"][:5], dark["frames"][:5]):
        for before, after in zip(light["data"], frame["data"]):
            if "textfont" not in before:
                continue
            for b, a in zip(before["textfont"]["color"], after["textfont"]["color"]):
                assert a == (LIGHT_TO_DARK[b] if b == FONT["color"] else b)
    assert figure["layout"]["font"]["color"] == FONT["color"]  # the light figure is untouched
