"""ui/preload.py: the page's first element imports Streamlit's chart and widget chunks, so that
the browser loads them while the server works on the first run (cold start)."""

from __future__ import annotations

import re

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
