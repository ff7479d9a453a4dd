"""The Explore page through Streamlit's AppTest: every control and path, no tracebacks."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from core.io.tables import CSV_RULES, csv_column_values, read_table
from core.numerics import denormals_flushed
from core.tasks import Example, get_task
from core.views import explore as ex
from core.views import models
from core.training import zoo
from core.tasks import ALL_TASKS
from streamlit.testing.v1 import AppTest

from pagetest import assert_clean, shown
from ui.state import page_key

APP = Path(__file__).resolve().parents[1] / "app.py"
CELLS = ("rnn", "lstm", "gru")
SHIPPED = set(zoo.available())


def app(**query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = str(value)
    return at.run()


def chart(at: AppTest) -> dict:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


@pytest.mark.skipif(not any(c == "lstm" for _, c in SHIPPED), reason="no shipped LSTM yet")
def test_landing_is_a_trained_lstm_with_no_clicks():
    at = app()
    assert_clean(at)
    assert "trained LSTM" in shown(at.caption[0].value)
    assert not at.warning  # a trained model carries no "untrained" warning
    spec = chart(at)
    assert len(spec["frames"]) >= 2 and spec["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"


@pytest.mark.parametrize("task", list(ALL_TASKS))
@pytest.mark.parametrize("cell", CELLS)
def test_every_task_and_cell_with_a_random_init_is_labelled_untrained(task, cell):
    at = app(task=task, cell=cell, source="random", seed=3)
    assert_clean(at)
    assert "UNTRAINED" in shown(at.caption[0].value)
    assert "untrained" in at.warning[0].value
    spec = chart(at)
    assert len(spec["frames"]) >= 1
    assert at.query_params.get("task", ex.ExploreState.task) == task  # the link reproduces the view
    assert at.query_params["cell" if cell != "lstm" else "source"] == (
        cell if cell != "lstm" else "random")


@pytest.mark.parametrize("task, cell", sorted(SHIPPED))
def test_every_shipped_model(task, cell):
    at = app(task=task, cell=cell)
    assert_clean(at)
    assert not at.error
    assert f"trained {cell.upper()}" in shown(at.caption[0].value)
    chart(at)


def test_missing_trained_model_is_a_clear_message():
    # A view asking for a model that does not ship (simulated) explains what to do.
    view = ex.ExploreState(task="adding", cell="lstm", source="shipped")
    orig = zoo.available
    zoo.available = lambda *a, **k: []
    try:
        with pytest.raises(ValueError, match="fresh random init"):
            ex.resolve_model(view)
    finally:
        zoo.available = orig


def test_switching_cell_and_task_updates_chart_and_url():
    at = app(task="adding", source="random")
    at.radio(key="explore_cell").set_value("gru").run()
    assert_clean(at)
    assert at.query_params["cell"] == "gru"
    titles = [a["text"] for a in chart(at)["layout"]["annotations"]]
    assert any(t.startswith("update gate z") for t in titles)
    at.selectbox(key="explore_task").set_value("sentiment").run()
    assert_clean(at)
    assert at.query_params["task"] == "sentiment"


def test_url_reproduces_the_view_and_invalid_values_are_ignored():
    at = app(task="adding", cell="gru", source="random", seed=7, sample=4, len=33, unit=5, t=9)
    assert_clean(at)
    spec = chart(at)
    assert len(spec["frames"]) == 33
    assert at.number_input(key="explore_unit").value == 5
    assert spec["data"][-1]["x"] == [9, 9]
    bad = app(task="nope", cell="transformer", source="x", seed="-1", len="huge", unit="999999",
              t="abc", pick="zzz")
    assert_clean(bad)
    assert not bad.error
    assert bad.radio(key="explore_cell").value == "lstm"


def test_sequence_length_seed_unit_picks_and_steps():
    at = app(task="adding", source="random")
    at.slider(key="explore_len_adding").set_value(120).run()
    assert len(chart(at)["frames"]) == 120
    before = chart(at)["layout"]["images"][0]["source"]
    at.number_input(key="explore_sample").increment().run()
    assert chart(at)["layout"]["images"][0]["source"] != before
    at.radio(key="explore_pick").set_value("most variable").run()
    assert_clean(at)
    names = [s["name"] for s in chart(at)["layout"]["shapes"] if s["name"].startswith("h[")]
    assert len(names) == 3
    at.number_input(key="explore_t").set_value(10).run()
    at.button(key="explore_step_next").click().run()  # step ▶
    assert at.number_input(key="explore_t").value == 11
    assert chart(at)["data"][-1]["x"] == [11, 11]  # the cursor starts at the stepped-to t
    at.button(key="explore_step_back").click().run()  # ◀ step
    assert at.number_input(key="explore_t").value == 10


def test_a_look_at_choice_reaches_the_figure_on_its_own_run():
    # the page builds its figure before it draws the "Look at" widgets (the figure is sent
    # first), from what those widgets hold
    at = app(task="adding", source="random")
    at.number_input(key="explore_unit").set_value(4).run()
    assert_clean(at)
    titles = [a["text"] for a in chart(at)["layout"]["annotations"]]
    assert "the cell at step t, unit 4" in titles
    assert at.query_params["unit"] == "4"


def test_typed_input_good_and_bad_keeps_the_last_good_view():
    at = app(task="agreement", source="random")
    at.radio(key="explore_input").set_value("text").run()
    at.text_area(key="explore_text").input("the cats near the old red door were").run()
    assert_clean(at)
    assert not at.error
    spec = chart(at)
    assert spec["data"][0]["text"][:2] == ["the", "cats"]
    at.text_area(key="explore_text").input("").run()  # empty: it asks, the last chart stays
    assert_clean(at)
    assert not at.error  # nothing is wrong yet: the page waits for input (issue 13, item 6)
    assert any("Type some input first" in i.value and "last view" in i.value for i in at.info)
    assert chart(at)["data"][0]["text"][:2] == ["the", "cats"]
    at.text_area(key="explore_text").input("\x00\x01").run()  # only invisible characters
    assert at.error and "last good view" in at.error[0].value
    at.text_area(key="explore_text").input("zorblax " * 3).run()  # unknown words: read as <unk>
    assert_clean(at)


def test_numbers_typed_for_airline_and_bad_numbers():
    at = app(task="airline", source="random", input="text", text="112 118 132 129 121 135 148")
    assert_clean(at)
    assert not at.error
    assert len(chart(at)["frames"]) >= 6
    at.text_area(key="explore_text").input("12 apples").run()
    assert_clean(at)
    assert at.error


def test_airline_target_is_shown_in_passengers():
    at = app(task="airline", source="random", seed=3)
    assert_clean(at)
    target = next(m.value for m in at.metric if m.label == "Target")
    example = ex.make_example(ex.ExploreState(task="airline", source="random", seed=3))
    assert target == f"next month ≈ {example.info['actual']:.0f}", target  # not "log-change"


def test_layer_and_direction_controls_for_an_uploaded_module():
    rnn = torch.nn.GRU(2, 6, num_layers=2, bidirectional=True)
    data = save(rnn.state_dict())
    view = ex.ExploreState(task="adding", cell="gru", source="upload")
    choice = ex.resolve_model(view, (data, "mine.safetensors"))
    assert "GRU" in choice.label and "bidirectional" in choice.label
    result = ex.run(view, choice, ex.make_example(view))
    assert result.trace.hidden.shape[:2] == (2, 2)
    with pytest.raises(ValueError, match="features"):
        v2 = ex.ExploreState(task="agreement", cell="gru", source="upload")
        ex.run(v2, choice, ex.make_example(v2))
    with pytest.raises(ValueError):
        ex.resolve_model(view, (b"not a checkpoint", "evil.pt"))
    with pytest.raises(ValueError, match="Upload"):
        ex.resolve_model(view, None)


def test_upload_source_without_a_file_asks_for_one_without_an_error():
    at = app(task="adding", source="upload")
    assert_clean(at)
    assert not at.error and at.info and "Upload" in at.info[0].value


def test_csv_column_values():
    values, cols = csv_column_values(b"month,passengers\n1949-01,112\n1949-02,118\n")
    assert values == [112.0, 118.0] and cols == ["passengers"]
    for bad in (b"", b"a,b\nx,y\n", b"\x00\x01garbage"):
        with pytest.raises(ValueError):
            csv_column_values(bad)
    view = ex.ExploreState(task="airline", input="csv", source="random")
    example = ex.make_example(view, [float(v) for v in range(100, 130)])
    assert len(example) > 0


# -- CSV input (issue 19 items 2, 8, 9) -------------------------------------------------------------

GOOD_CSV = b"month,passengers\n" + b"".join(f"m{i},{100 + 3 * i}\n".encode() for i in range(20))


def csv_upload(at: AppTest, data: bytes, name: str = "passengers.csv") -> AppTest:
    at.get("file_uploader")[0].set_value((name, data, "text/csv"))
    at.run()
    assert_clean(at)
    return at


def csv_app(data: bytes = GOOD_CSV) -> AppTest:
    return csv_upload(app(task="airline", source="random", input="csv"), data)


def test_a_csv_is_read_once_per_file_not_on_every_rerun(monkeypatch):
    import ui.widgets

    reads = []
    monkeypatch.setattr(ui.widgets, "read_table", lambda data: reads.append(1) or
                        read_table(data))
    at = csv_app()
    kept = at.session_state[page_key("explore", "csv_table")]
    next(b for b in at.button if b.label == "step ▶").click().run()
    assert_clean(at)
    assert len(reads) == 1 and at.session_state[page_key("explore", "csv_table")] is kept
    csv_upload(at, GOOD_CSV.replace(b"m19,157", b"m19,158"))  # another file: read once more
    assert len(reads) == 2


def test_a_csv_trace_stays_in_its_session_and_goes_with_it():
    """Nothing of a visitor's file is kept by the process: the CSV's table and its trace were
    kept alive by the cache every visitor shares (keyed by the values), and never returned."""
    at = csv_app()
    kept = at.session_state[page_key("explore", "csv_table")][2]
    _, (_, result) = at.session_state[page_key("explore", "memo")]
    assert result.example.info["values"][-1] == 157  # this trace is the CSV's
    gone = [weakref.ref(kept), weakref.ref(result), weakref.ref(result.example)]
    del kept, result, at
    gc.collect()
    assert [ref() for ref in gone] == [None, None, None]


def test_the_rules_are_stated_under_the_uploader_and_how_the_file_was_read():
    at = csv_app("month;passengers\n1949-01;112,5\n1949-02;118,2\n1949-03;130,7\n".encode())
    captions = [shown(c.value) for c in at.sidebar.caption]
    assert CSV_RULES in captions
    assert ("Read as semicolon-separated, 3 rows of data; decimal comma in “passengers”."
            in captions)
    _, (_, result) = at.session_state[page_key("explore", "memo")]
    assert result.example.info["values"] == [112.5, 118.2, 130.7]
    assert not at.error


def test_a_bad_csv_says_its_own_problem_and_keeps_the_last_view():
    at = csv_app()
    before = chart(at)
    csv_upload(at, b"month,passengers\n1949-01,112\n1949-02,118,5\n")
    errors = [shown(e.value) for e in at.error]
    assert len(errors) == 1, errors  # said once, where every input problem is said
    assert errors[0].startswith("Row 2 of the data (line 3 of the file) has 3 fields")
    assert "Showing your last good view instead." in errors[0]
    assert not any("Upload a CSV file" in i.value for i in at.info)  # one was uploaded
    assert chart(at) == before


def test_a_long_header_is_cut_in_the_message():
    at = csv_app(b",".join(b"h" * 2000 + str(i).encode() for i in range(60)) + b"\nx" + b",x" * 59
                 + b"\n")
    (error,) = at.error
    assert len(error.value) < 2000 and "and 50 more" in shown(error.value)


def test_nul_never_reaches_the_column_picker():
    at = csv_app("month,passengers\n1949-01,112\n1949-02,118\n".encode("utf-16-le"))
    assert "NUL characters" in at.error[0].value
    assert not [s for s in at.selectbox if s.key == "explore_csv_col"]
    at = csv_upload(at, "month,passengers\n1949-01,112\n1949-02,118\n".encode("utf-16"))
    assert not at.error
    assert at.selectbox(key="explore_csv_col").options == ["passengers"]


def test_a_trace_leaves_the_threads_float_mode_as_it_found_it():
    view = ex.ExploreState(task="airline", source="random", input="text", text="112 118 132")
    try:
        for mode in (False, True):
            torch.set_flush_denormal(mode)  # (training in this process may have left it on)
            ex.run(view, ex.resolve_model(view), ex.make_example(view))
            assert denormals_flushed() == mode
            if not mode:  # 1e-310 is positive: it read as 0 while the trace's mode leaked
                assert len(get_task("airline").from_values([1e-310, 2e-310, 4e-310])) == 2
    finally:
        torch.set_flush_denormal(False)


def test_an_input_beyond_float32_is_said_in_the_users_terms():
    view = ex.ExploreState(task="random", source="random")
    example = Example(torch.full((3, 64), float("inf")), None, ["t1", "t2", "t3"])
    with pytest.raises(ValueError, match="too large for the model: it computes in float32"):
        ex.run(view, ex.resolve_model(view), example)


def test_an_exploding_upload_is_said_on_the_page_and_in_the_figure():
    """A relu RNN whose recurrent weights triple the state each step overflows float32: the
    maps and the gradient plot cannot draw inf, and the page says so (it used to say nothing)."""
    rnn = torch.nn.RNN(2, 8, nonlinearity="relu")
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(3 * torch.eye(8))
        rnn.weight_ih_l0.fill_(1.0)
    at = app(task="adding", source="upload", len=200)
    upload(at, "exploding.safetensors", save(rnn.state_dict(), metadata={"nonlinearity": "relu"}))
    warnings = [shown(w.value) for w in at.warning]
    assert any(w.startswith("The hidden state overflowed float32 (beyond 3.4e+38) at step")
               for w in warnings), warnings
    notes = [a["text"] for a in chart(at)["layout"]["annotations"]]
    assert any("overflowed float32" in n for n in notes)


def test_an_uploaded_file_name_loses_its_bidi_override_in_the_label():
    data = save(torch.nn.GRU(2, 4).state_dict())
    label = models.uploaded(data, "\u202egnp.safetensors").label
    assert "\u202e" not in label and "gnp.safetensors" in label
    assert len(models.uploaded(data, "y" * 500 + ".safetensors").label) < 200


def test_downloads_are_offered():
    at = app(task="adding", source="random")
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Trace (.npz)", "Trace (.csv)", "Figure (standalone .html)",
                      "Slide at t = 0 (.png)", "Animation, steps 0–49 (.gif)"]


@pytest.fixture(scope="module")
def gru_trained_here():
    """A small GRU trained on the adding task, as the Train page leaves it in the session."""
    from core.training.loop import TrainConfig, train

    torch.set_num_threads(1)
    result = train("adding", "gru", TrainConfig(hidden_size=8, max_steps=20, heldout_size=50,
                                                heldout_every=20, seed=5))
    return {"adding · GRU · 10:00:00": result}


def test_a_model_trained_in_this_session_opens_from_the_train_page(gru_trained_here):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["gatescope.trained"] = gru_trained_here
    at.session_state["gatescope.explore.open"] = "adding · GRU · 10:00:00"
    at.run()
    assert_clean(at)
    caption = shown(at.caption[0].value)
    assert "Adding problem" in caption and "GRU" in caption and "adding · GRU · 10:00:00" in caption
    assert at.selectbox(key="explore_run").value == "adding · GRU · 10:00:00"
    spec = chart(at)
    assert len(spec["frames"]) >= 1
    # "update" is a GRU gate: the figure is the session model's, not the landing LSTM's
    assert "update" in json.dumps(spec["layout"])


def test_a_session_model_that_is_gone_is_a_message_not_a_traceback():
    at = app(task="adding", source="session", run="adding · LSTM · 09:00:00")
    assert_clean(at)
    assert any("another browser session" in e.value for e in at.error)


def test_links_made_before_sources_had_one_word_each_still_open_the_shipped_model():
    assert ex.ExploreState.from_query({"source": "trained"}).source == "shipped"
    assert "source" not in ex.ExploreState.from_query({"source": "trained"}).to_query()
    at = app(task="adding", cell="gru", source="trained")
    assert_clean(at)
    assert "shipped trained GRU" in shown(at.caption[0].value)


# -- uploads: the module picker and the nonlinearity ---------------------------------------------
# tests/e2e/test_explore_browser.py also uploads a two-module file in Chromium.


def two_module_file() -> bytes:
    """A seq2seq-like state_dict: an encoder GRU and a decoder LSTM, beside other layers."""
    torch.manual_seed(0)
    encoder, decoder = torch.nn.GRU(2, 4), torch.nn.LSTM(2, 5, num_layers=2)
    state = ({f"encoder.rnn.{k}": v for k, v in encoder.state_dict().items()}
             | {f"decoder.{k}": v for k, v in decoder.state_dict().items()}
             | {"head.weight": torch.randn(1, 5)})
    return save(state)


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    """Give the page's weights uploader a file, as tests/test_bad_inputs.py does."""
    at.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
    return at.run()


def test_a_file_with_two_modules_loads_each_one_by_its_prefix_in_core():
    from core.views.models import Upload

    data = two_module_file()
    view = ex.ExploreState(task="adding", source="upload")
    with pytest.raises(ValueError, match="choose one"):
        ex.resolve_model(view, (data, "seq2seq.safetensors"))
    encoder = ex.resolve_model(view, Upload(data, "seq2seq.safetensors", "encoder.rnn"))
    decoder = ex.resolve_model(view, Upload(data, "seq2seq.safetensors", "decoder"))
    assert isinstance(encoder.rnn, torch.nn.GRU) and encoder.rnn.hidden_size == 4
    assert isinstance(decoder.rnn, torch.nn.LSTM) and decoder.rnn.num_layers == 2
    assert "module `decoder`" in decoder.label and "module `encoder.rnn`" in encoder.label
    assert ex.run(view, decoder, ex.make_example(view)).trace.hidden.shape[:2] == (2, 1)
    # The page's cache key sees every choice.
    keys = {Upload(data, "f.safetensors", p, n).cache_key for p in ("decoder", "encoder.rnn", None)
            for n in ("tanh", "relu", None)}
    assert len(keys) == 9


def test_the_upload_picker_lists_the_modules_and_the_page_traces_the_one_picked():
    at = upload(app(task="adding", source="upload"), "seq2seq.safetensors", two_module_file())
    assert_clean(at)
    picker = at.selectbox(key="explore_upload_prefix")
    assert picker.options == ["decoder: LSTM with input size 2, hidden size 5, 2 layers",
                              "encoder.rnn: GRU with input size 2, hidden size 4, 1 layer"]
    assert picker.value == "decoder"  # the first, by default
    assert "your LSTM from seq2seq.safetensors, module `decoder`" in shown(at.caption[0].value)
    assert at.radio(key="explore_upload_nonlinearity").disabled  # an LSTM has no such choice
    assert "Layer" in [s.label for s in at.selectbox]  # two layers: the layer picker
    picker.set_value("encoder.rnn").run()
    assert_clean(at)
    assert "your GRU from seq2seq.safetensors, module `encoder.rnn`" in shown(at.caption[0].value)
    assert "update" in json.dumps(chart(at)["layout"])  # the GRU's trace, not the cached LSTM's
    assert not at.query_params.get("prefix")  # an upload's choices stay out of the URL


def test_the_upload_nonlinearity_choice_reaches_the_trace():
    torch.manual_seed(0)
    rnn = torch.nn.RNN(2, 6, nonlinearity="relu")
    at = upload(app(task="adding", source="upload", len=20), "relu.safetensors",
                save(rnn.state_dict()))
    assert_clean(at)
    radio = at.radio(key="explore_upload_nonlinearity")
    assert radio.value == "tanh" and not radio.disabled and "vanilla RNN only" in radio.label
    assert "(tanh, input 2" in shown(at.caption[0].value)
    assert "explore_upload_prefix" not in [s.key for s in at.selectbox]  # one module: no picker
    radio.set_value("relu").run()
    assert_clean(at)
    assert "your RNN from relu.safetensors (relu, input 2" in shown(at.caption[0].value)
    # The file's own metadata wins over the choice, and the page says so.
    at.radio(key="explore_upload_nonlinearity").set_value("tanh")
    upload(at, "exported.safetensors", save(rnn.state_dict(), metadata={"nonlinearity": "relu"}))
    assert_clean(at)
    assert "relu as the file says" in shown(at.caption[0].value)
    assert "not your tanh" not in shown(at.caption[0].value)  # the choice was its default
    assert any("This file's metadata says its RNN uses relu" in shown(w.value)
               for w in at.warning)


def test_a_wrong_answer_is_marked_wrong_and_the_airline_input_is_said():
    at = app(task="agreement", source="shipped", cell="rnn", sample=0, len=30)
    assert_clean(at)
    answer = next(m for m in at.metric if m.label == "Model's answer")
    assert answer.proto.delta == "wrong"  # the RNN at chance 30 words from the subject
    at = app(task="airline", source="random", seed=3, input="text", text="112 118 132 129")
    assert_clean(at)
    assert any("What the model read: 3 numbers from your 4 values" in shown(c.value) for c in at.caption)


def test_the_vocabulary_goes_in_its_own_uploader_beside_the_weights():
    """One file per uploader (a new one replaces the one before: a session holds two uploads
    here at most); a vocabulary beside the weights reaches the model."""
    torch.manual_seed(0)
    state = {"embed.weight": torch.randn(5, 3)}
    state |= {f"lstm.{k}": v for k, v in torch.nn.LSTM(3, 4).state_dict().items()}
    at = app(task="adding", source="upload")
    uploaders = at.get("file_uploader")
    assert not uploaders[0].accept_multiple_files and not uploaders[1].accept_multiple_files
    uploaders[0].set_value(("lm.safetensors", save(state), "application/octet-stream"))
    uploaders[1].set_value(("vocab.json", json.dumps(list("abcde")).encode(),
                            "application/json")).run()
    assert_clean(at)
    assert at.radio(key="explore_own_kind").options == ["text, through my vocabulary",
                                                        "token ids"]


def test_the_training_step_slider_shows_the_shipped_model_as_it_learned():
    """Issue 17, item 5: the adding LSTM's history, from its initialisation to the shipped
    weights; a link with `snap` opens at that step, and the trace is of those weights."""
    from core.engine import trace
    from core.views.models import shipped_history

    at = app(task="adding", cell="lstm", source="shipped", len=20)
    assert_clean(at)
    slider = at.select_slider(key="explore_snap")
    assert slider.value == -1 and "3,000" in slider.format_func(-1)
    slider.set_value(0).run()
    assert_clean(at)
    assert at.query_params["snap"] in ("0", ["0"])
    caption = shown(at.caption[0].value)
    assert "LSTM at training step 0 of 3,000" in caption and "not measured" in caption
    assert any("untrained" in w.value for w in at.warning)
    view = ex.ExploreState(task="adding", cell="lstm", len=20, snap=0)
    init = shipped_history("adding", "lstm")[0][1]
    _, result = ex.resolve_model(view), ex.run(view, ex.resolve_model(view), ex.make_example(view))
    want = trace(init.rnn, init.features(ex.make_example(view).inputs).float(),
                 ex.get_task("adding").objective(init, ex.make_example(view).target))
    assert abs(result.trace.hidden - want.hidden).max() < 1e-6
    # a link opens there; no slider for a task whose models ship no history
    linked = app(task="agreement", cell="gru", source="shipped", snap="2")
    assert_clean(linked)
    assert "GRU at training step 5 of 2,000" in shown(linked.caption[0].value)
    assert "explore_snap" not in [s.key for s in app(task="airline").select_slider]
