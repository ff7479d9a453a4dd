"""The Gradient lab and the Train page in real Chromium: the lab with and without clipping, a
small model trained to the end and downloaded, a model opened in Explore after a setting was
changed, no exception on any page. Screenshots land in artifacts/ (lab-*.png, train-*.png) for a
person to look at."""

from __future__ import annotations

import pytest
import safetensors.torch

from harness import shot, wait_for_app

pytestmark = pytest.mark.e2e

CHART = ".js-plotly-plot"
TALL = {"width": 1500, "height": 2300}  # Streamlit scrolls inside the page: a tall viewport
                                       # puts every chart in the screenshot


def drawn_points(page, title_part: str) -> int:
    """How many data points the chart whose title contains `title_part` has drawn (SVG paths
    of its traces), so a blank chart fails."""
    return page.evaluate(
        """(part) => {
            for (const gd of document.querySelectorAll('.js-plotly-plot')) {
                const title = gd.layout && gd.layout.title && gd.layout.title.text || '';
                if (!title.includes(part)) continue;
                let n = 0;
                for (const t of gd._fullData) {
                    const ys = Array.from(t.y || []);
                    n += ys.filter(v => v !== null && Number.isFinite(v)).length;
                }
                const drawn = gd.querySelectorAll('.scatterlayer .trace path.js-line').length;
                return drawn > 0 ? n : 0;
            }
            return -1;
        }""", title_part)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not page.js_errors, page.js_errors


def test_gradient_lab_explodes_without_clipping_and_stays_finite_with_it(page, app_url,
                                                                         artifacts):
    page.set_viewport_size(TALL)
    page.goto(f"{app_url}/gradient_lab")
    wait_for_app(page)
    page.wait_for_selector(CHART, timeout=60_000)
    assert "vanishing" in page.inner_text("body")
    assert drawn_points(page, "gradient through time") >= 100
    shot(page, artifacts, "lab-vanishing")

    page.get_by_role("button", name="Exploding: radius 3").click()
    wait_for_app(page)
    page.get_by_text("exploding").first.wait_for(timeout=30_000)
    assert "radius=3" in page.url  # the experiment is in the link
    page.goto(page.url + "&steps=100")  # the link, with fewer steps: a shorter run
    wait_for_app(page)
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Stayed finite but did not learn").wait_for(timeout=120_000)
    wait_for_app(page)
    body = page.inner_text("body")
    assert "Diverged: the loss became inf" in body
    assert drawn_points(page, "Loss (MSE)") > 100
    assert drawn_points(page, "Gradient norm per update") > 100
    assert "step 100 of 100" in body
    no_exception(page)
    shot(page, artifacts, "lab-exploding-run")


def test_gradient_lab_without_clipping_trains_one_plain_run(page, app_url, artifacts):
    page.set_viewport_size(TALL)
    page.goto(f"{app_url}/gradient_lab?len=50&rescale=1&radius=3&clip=off&steps=100")
    wait_for_app(page)
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Diverged: the loss became").wait_for(timeout=120_000)
    wait_for_app(page)
    assert "with clipping" not in page.inner_text("body")
    assert page.locator('[data-testid="stProgress"]').count() == 1
    no_exception(page)
    shot(page, artifacts, "lab-no-clipping")


def test_train_three_cells_to_the_end_and_download_the_weights(page, app_url, artifacts):
    page.set_viewport_size(TALL)
    page.goto(f"{app_url}/train?steps=150&hidden=16&seconds=60")
    wait_for_app(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.locator('[data-testid="stProgress"]').nth(2).wait_for(timeout=30_000)
    page.wait_for_function(  # live: a step count above 0 shows while training goes on
        """() => /step [1-9][0-9]* of 150/.test(document.body.innerText)""", timeout=60_000)
    shot(page, artifacts, "train-running")
    page.get_by_text("Trained in this session").wait_for(timeout=120_000)
    wait_for_app(page)
    body = page.inner_text("body")
    for cell in ("RNN", "LSTM", "GRU"):
        assert f"adding · {cell} · " in body
    kept = body.split("Trained in this session")[1]
    assert kept.count("finished, 150 steps") == 3  # all three, kept for Explore and Compare
    assert drawn_points(page, "Loss: training") > 300
    assert drawn_points(page, "Loss spread") > 100
    no_exception(page)
    shot(page, artifacts, "train-finished")

    with page.expect_download() as download:
        page.get_by_role("button", name="Weights").first.click()
    tensors = safetensors.torch.load(open(download.value.path(), "rb").read())
    assert any(name.startswith("rnn.weight_hh_l0") for name in tensors)
    assert download.value.suggested_filename.endswith(".safetensors")


def test_open_in_explore_after_a_setting_was_changed(page, app_url, artifacts):
    """Widgets bound to the URL stopped st.switch_page ("Cannot clear query parameters ... bound
    to widgets") once a setting was changed, so "Open in Explore" said the page was missing.
    The app is entered at its root, as a visitor does, and the Train page opened from the
    navigation."""
    page.set_viewport_size(TALL)
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_role("link", name="Train").click()
    page.locator(".st-key-train_cells").wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator(".st-key-train_cells").get_by_text("LSTM", exact=True).click()
    wait_for_app(page)
    steps = page.locator(".st-key-train_steps input")
    steps.fill("30")
    steps.press("Enter")
    wait_for_app(page)
    page.wait_for_function("() => /cells=lstm/.test(location.search) && /steps=30/.test("
                           "location.search)", timeout=30_000)  # settings changed, in the URL
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Trained in this session").wait_for(timeout=120_000)
    wait_for_app(page)
    assert "finished, 30 steps" in page.inner_text("body")
    page.get_by_role("button", name="Open in Explore").click()
    page.get_by_text("gatescope · Explore").wait_for(timeout=60_000)
    wait_for_app(page)
    page.wait_for_function("() => location.search.includes('source=session')", timeout=30_000)
    body = page.inner_text("body")
    assert "not available" not in body and "adding · LSTM · " in body
    page.wait_for_selector(CHART, timeout=60_000)  # the trained model, traced
    no_exception(page)
    shot(page, artifacts, "train-open-in-explore")
