"""The visitor's own uploads in Compare's columns, through Streamlit's AppTest (issue 15): gatescope's
own download compared like a session model, a user's raw module traced with its own objective,
a module that cannot read the task's input refused in its column only, a broken file refused
with the last good view kept, and a link that never carries the upload."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.io.exports import model_files
from core.views import compare as cmp
from core.views import explore as ex
from core.views import models
from pagetest import assert_clean, shown

PAGE = Path(__file__).resolve().parents[1] / "app_pages" / "compare.py"
MEMO = "gatescope.compare.memo"  # the session's own comparison (ui.compute.session_memo)


def page(**query) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = str(value)
    return at.run()


def upload(at: AppTest, cell: str, *files: tuple[str, bytes]) -> AppTest:
    """Pick "my own weights (upload)" for `cell` (if not yet) and give its uploader `files`."""
    if at.selectbox(key=f"compare_{cell}").value != cmp.UPLOAD:
        at.selectbox(key=f"compare_{cell}").set_value(cmp.UPLOAD).run()
        assert_clean(at)
    uploader = next(u for u in at.get("file_uploader")
                    if u.proto.id.endswith(f"compare_{cell}_weights_file")
                    or f"compare_{cell}_weights_file" in u.proto.id)
    (name, data), *beside = files
    uploader.set_value((name, data, "application/octet-stream"))
    if beside:  # the Config file, in the uploader beside the weights
        next(u for u in at.get("file_uploader") if f"compare_{cell}_beside_file" in u.proto.id
             ).set_value((beside[0][0], beside[0][1], "application/json"))
    at.run()
    assert_clean(at)
    return at


def column(at: AppTest, cell: str):
    """The column of `cell` in the row under the input (the first row of three columns)."""
    return at.columns[list(cmp.CELL_ORDER).index(cell)]


def column_text(at: AppTest, cell: str) -> str:
    col = column(at, cell)
    parts = [c.value for c in col.caption] + [e.value for e in col.error] + \
        [i.value for i in col.info] + [w.value for w in col.warning]
    return "\n".join(shown(p) for p in parts)


def metric(at: AppTest, cell: str, label: str):
    return next(m for m in column(at, cell).metric if m.label == label)


def table(at: AppTest):
    return at.table[0].value


def saved(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def comparison(at: AppTest) -> cmp.Comparison:
    return at.session_state[MEMO][1]


def shared_comparisons() -> list[cmp.Comparison]:
    """Every Comparison in the process's st.cache_resource caches (shared by all visitors)."""
    from streamlit.runtime.caching import cache_resource_api
    found = []
    for caches in cache_resource_api._resource_caches._function_caches.values():
        for cache in caches.values():
            with cache._mem_cache_lock:
                values = [result.value for result in cache._mem_cache.values()]
            found += [v for v in values if isinstance(v, cmp.Comparison)]
    return found


@pytest.fixture(scope="module")
def download():
    """gatescope's Train-page download of a tiny adding-problem LSTM: (run, weights, Config)."""
    from core.training.loop import TrainConfig, train

    torch.set_num_threads(1)
    result = train("adding", "lstm", TrainConfig(hidden_size=5, max_steps=3, heldout_size=20,
                                                 heldout_every=3, seed=2))
    weights, config = model_files(result)
    return result, weights, config.encode()


def expected_prediction(result, view: cmp.CompareState) -> str:
    example = cmp.make_example(view)
    return ex.run(ex.ExploreState(task=view.task, cell="lstm"),
                  models.from_session("run", result), example).prediction


def test_gatescope_download_in_the_lstm_column_is_compared_like_a_trained_model(download):
    result, weights, config = download
    at = upload(page(sample=3), "lstm", ("adding_lstm.safetensors", weights))
    assert not at.error
    assert [h.value for h in at.subheader][:3] == ["RNN (vanilla)", "LSTM", "GRU"]
    assert "your LSTM from adding_lstm.safetensors" in column_text(at, "lstm")
    prediction = metric(at, "lstm", "Prediction")
    assert prediction.value == expected_prediction(result, cmp.CompareState(sample=3))
    # Its score is not known without the Config file, and the page says how to get it.
    held = metric(at, "lstm", "Held-out MSE")
    assert held.value == "not known" and held.proto.delta == "upload its Config file too"
    assert metric(at, "gru", "Held-out MSE").value != "not known"  # the shipped GRU's
    measures = table(at)
    assert measures.loc["Training step, forward + backward (median)", "LSTM"].endswith(" ms")
    assert measures.loc["Training time (recorded when trained)", "LSTM"] == "not known"
    assert measures.loc["Recurrent parameters", "LSTM"] == f"{4 * (5 * (2 + 5) + 10):,}"
    assert "GRU ÷ LSTM" in measures.columns  # the LSTM column holds an LSTM
    assert any("upload the Config file" in c.value for c in at.caption)
    # The same trace as the trained model's, on the shared input and the task's objective.
    mine = comparison(at).cells["lstm"]
    example = cmp.make_example(cmp.CompareState(sample=3))
    want = ex.run(ex.ExploreState(task="adding", cell="lstm"), models.from_session("run", result),
                  example).trace
    assert np.array_equal(mine.result.trace.hidden, want.hidden)
    assert mine.result.trace.objective == pytest.approx(want.objective)
    # The visitor's own: never in the cache every visitor shares; never in the link.
    assert all(c.choice.source == "shipped" for s in shared_comparisons()
               for c in s.cells.values())
    assert dict(at.query_params) == {"sample": "3", "lstm": cmp.UPLOAD}


def test_with_its_config_file_the_download_shows_its_score_and_training_run(download):
    result, weights, config = download
    at = upload(page(), "lstm", ("adding_lstm.safetensors", weights),
                ("adding_lstm.json", config))
    assert not at.error
    held = metric(at, "lstm", "Held-out MSE")
    assert held.value == f"{result.score.value:.4g}"
    assert held.proto.delta.startswith(f"baseline {result.score.baseline:.4g}: ")
    assert table(at).loc["Training time (recorded when trained)", "LSTM"] == \
        f"{result.seconds:.1f} s, 3 steps"
    assert "3 steps" in column_text(at, "lstm") and "held-out MSE" in column_text(at, "lstm")
    # Another task's view: the column says which task it was trained on; the rest still runs.
    at.selectbox(key="compare_task").set_value("airline").run()
    assert_clean(at)
    assert "trained on Adding problem: choose that task" in column_text(at, "lstm")
    assert len(column(at, "lstm").error) == 1
    assert [m.label for m in at.metric].count("Prediction") == 2
    assert list(table(at).columns) == ["RNN (vanilla)", "GRU"]


def test_a_users_raw_gru_in_the_rnn_column_is_traced_with_its_own_objective():
    torch.manual_seed(0)
    gru = torch.nn.GRU(2, 6)
    at = upload(page(len=20), "rnn", ("my_gru.pt", saved(gru.state_dict())))
    assert not at.error
    text = column_text(at, "rnn")
    assert "your GRU from my_gru.pt (input 2, hidden 6, 1 layer(s))" in text
    assert "You uploaded a GRU into the RNN (vanilla) column" in text
    assert "sum of the top layer's output at the last step" in text
    assert "No held-out score" in text
    assert metric(at, "rnn", "Your head's answer").value == "—"  # no head
    assert not [m for m in column(at, "rnn").metric if m.label.startswith("Held-out")]
    measures = table(at)
    for row in ("Training step, forward + backward (median)",
                "Peak training memory (params + grads + saved activations)",
                "Training time (recorded when trained)"):
        assert measures.loc[row, "RNN (vanilla)"] == "—"
    assert measures.loc["Recurrent parameters", "RNN (vanilla)"] == \
        f"{sum(p.numel() for p in gru.parameters()):,}"
    assert measures.loc["Trace time (median)", "RNN (vanilla)"].endswith(" ms")
    assert any(c.value.startswith("RNN (vanilla): no training step or memory is measured for "
                                  "your own module") for c in at.caption)
    # PyTorch's own GRU on the same numbers the other columns read; its gradient is of the sum
    # of its output at the last step.
    mine = comparison(at).cells["rnn"]
    x = cmp.make_example(cmp.CompareState(len=20)).inputs.float().reshape(20, 2)
    with torch.no_grad():
        output, _ = gru(x)
    assert np.allclose(mine.result.trace.hidden[0, 0], output.numpy(), atol=1e-6)
    assert float(mine.result.trace.objective) == pytest.approx(float(output[-1].sum()), abs=1e-5)
    # The figure's RNN column is the GRU's: its update gate row, titled as the upload.
    titles = [a["text"] for a in json.loads(next(
        c for c in at.get("plotly_chart") if "compare_chart" in c.proto.id).proto.spec)[
        "layout"]["annotations"]]
    assert "<b>RNN (vanilla)</b> · your upload (GRU)" in titles
    assert titles.count("update gate z<br>(1 = keep h)") == 2  # the uploaded GRU and the GRU

    # With its head: the head's answer at the last step, and its gradient.
    head = torch.nn.Linear(6, 1)
    state = {f"rnn.{k}": v for k, v in gru.state_dict().items()} | {
        f"fc.{k}": v for k, v in head.state_dict().items()}
    upload(at, "rnn", ("with_head.pt", saved(state)))
    assert not at.error
    with torch.no_grad():
        answer = float(head(output[-1]))
    assert metric(at, "rnn", "Your head's answer").value == f"{answer:.4g} at step 19"
    assert "the head's output 0 at step 19" in column_text(at, "rnn")
    assert float(comparison(at).cells["rnn"].result.trace.objective) == pytest.approx(answer,
                                                                                       abs=1e-5)


def test_a_module_of_the_wrong_input_size_is_refused_in_its_column_only():
    at = upload(page(len=20), "gru", ("three_features.pt",
                                      saved(torch.nn.GRU(3, 4).state_dict())))
    assert_clean(at)
    errors = column(at, "gru").error
    assert len(errors) == 1 and len(at.error) == 1  # none above the page: the others compare
    assert ("Your module expects 3 input features per step, but the Adding problem task "
            "gives 2") in shown(errors[0].value)
    assert "your GRU from three_features.pt" in column_text(at, "gru")
    assert [m.label for m in at.metric].count("Prediction") == 2
    assert list(table(at).columns) == ["RNN (vanilla)", "LSTM"]
    spec = json.loads(next(c for c in at.get("plotly_chart")
                           if "compare_chart" in c.proto.id).proto.spec)
    assert len(spec["frames"]) == 20
    assert [a["text"] for a in spec["layout"]["annotations"] if a["text"].startswith("<b>")] == [
        "<b>RNN (vanilla)</b>", "<b>LSTM</b>"]


def test_a_broken_upload_says_why_and_keeps_the_last_good_view(download):
    _, weights, _ = download
    at = upload(page(sample=7), "lstm", ("adding_lstm.safetensors", weights))
    good = metric(at, "lstm", "Prediction").value
    upload(at, "lstm", ("adding_lstm.safetensors", weights[: len(weights) // 2]))
    message = shown(at.error[0].value)
    assert message.startswith("LSTM column: `adding_lstm.safetensors` is truncated")
    assert "Showing your last good view instead" in message
    assert metric(at, "lstm", "Prediction").value == good
    assert "your LSTM from adding_lstm.safetensors" in column_text(at, "lstm")
    # Beside gatescope's download, a file that is not its Config: the loader's message, and
    # still the last good view (the weights' own box takes weights only).
    upload(at, "lstm", ("adding_lstm.safetensors", weights), ("notes.txt", b"hello"))
    assert "LSTM column: `notes.txt` is not the Config file" in shown(at.error[0].value)
    assert metric(at, "lstm", "Prediction").value == good


def test_a_link_never_carries_the_upload_and_opens_with_the_shipped_model():
    torch.manual_seed(1)
    at = upload(page(), "gru", ("secret_name.pt", saved(torch.nn.LSTM(2, 3).state_dict())))
    assert "your LSTM from secret_name.pt" in column_text(at, "gru")
    link = dict(at.query_params)
    assert link == {"gru": cmp.UPLOAD}
    assert not any("secret" in value for value in link.values())
    # Opened elsewhere: the column is for an upload, so its uploader waits; the shipped GRU
    # shows meanwhile, and the column says why.
    again = page(**link)
    assert_clean(again)
    assert not again.error
    assert again.selectbox(key="compare_gru").value == cmp.UPLOAD
    assert any("compare_gru_weights_file" in u.proto.id for u in again.get("file_uploader"))
    assert cmp.WAITING_FOR_UPLOAD in column_text(again, "gru")
    assert "shipped trained GRU" in column_text(again, "gru")
    assert len(again.table[0].value.columns) == 4  # the three shipped models and the ratio


def test_agreement_accuracy_by_distance_is_measured_for_a_downloaded_model():
    from core.training.loop import TrainConfig, train

    torch.set_num_threads(1)
    result = train("agreement", "gru", TrainConfig(hidden_size=5, max_steps=3, heldout_size=20,
                                                   heldout_every=3, seed=2))
    weights, config = model_files(result)
    at = upload(page(task="agreement"), "gru", ("agreement_gru.safetensors", weights),
                ("agreement_gru.json", config.encode()))
    assert not at.error
    chart = json.loads(next(c for c in at.get("plotly_chart")
                            if "accuracy_chart" in c.proto.id).proto.spec)
    lines = {line["name"]: line["y"] for line in chart["data"]}
    assert list(lines) == ["RNN (vanilla)", "LSTM", "GRU"]
    want = cmp.accuracy_by_distance(models.from_session("run", result))
    assert lines["GRU"] == pytest.approx([row["accuracy"] for row in want])
    held = metric(at, "gru", "Held-out accuracy")
    assert held.value == f"{result.score.value:.4g}"
    assert "beyond 5 words" in held.proto.delta  # judged at long distances too
