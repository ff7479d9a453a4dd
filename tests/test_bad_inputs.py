"""A catalogue of bad inputs (issue 6): each one, where it goes in, and the message it must produce.

Every row of CASES runs at two layers:

- core: the function the page calls refuses it with a ValueError (a LimitError, naming the limit,
  where a documented limit is crossed) whose message matches, accepts and reports it (unknown
  words), or ignores it in favour of the default (URL parameters);
- app: the same input through the page's real widgets or URL under Streamlit's AppTest: no
  traceback, the message on screen, nothing the user had lost (the last good chart and the model
  stay, the typed text stays in its box), and no user text rendered as HTML.

Malformed checkpoint files have their own catalogue in tests/test_loading.py; two of them go end
to end through the Explore page here. A row with `bug` set is a known defect in code this file
does not own: it is marked xfail(strict=True), so fixing the defect turns it into a failure here
until the mark is removed.
"""

from __future__ import annotations

import functools
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from safetensors.torch import save

from core.views import explore as ex
from core.views.train import TrainState
from core.limits import LIMITS, LimitError
from core.tasks.agreement import VERBS
from core.io.sequences import read_matrix
from core.io.tables import csv_column_values
from core.views.models import Upload
from core.training.loop import TrainConfig, train

from core.training.session import describe_result, make_train_config, plan_runs
from streamlit.testing.v1 import AppTest
from pagetest import shown
from ui.live import session_key
from ui.text import visible
from ui.state import TRAINED

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TRAIN_PAGE = str(ROOT / "app_pages" / "train.py")
LAB_PAGE = str(ROOT / "app_pages" / "gradient_lab.py")
COMPARE_PAGE = str(ROOT / "app_pages" / "compare.py")
SEARCH_PAGE = str(ROOT / "app_pages" / "search.py")

# Where an input goes in.
TEXT = "typed text (Explore, 'my own text / numbers')"
CSV = "CSV upload (Explore, airline, 'CSV column')"
LENGTH = "sequence length of a seeded sample (Explore)"
URL = "Explore page URL"
LAB_URL = "Gradient lab URL"
COMPARE_URL = "Compare page URL"
TRAIN_URL = "Train page URL"
SEARCH_URL = "Search page URL"
WEIGHTS = "weights upload (Explore, 'my own weights')"
TRACE = "weights upload with a 600-step sample (Explore, adding)"
FILES = "weights with a vocabulary beside them (Explore, 'my own weights')"
OWN_FILE = "an input file for one's own 3-feature model (Explore, 'a CSV / NPY / NPZ file')"
TRAINING = "a training run (Train page)"
TRAINING_SIZE = "the size of a training run, against the memory budget (Train page URL, then Train)"

# What must happen to it.
REFUSED = "refused with a message; the last good view stays"
REPORTED = "accepted; what was odd about it is reported"
ACCEPTED = "accepted quietly"
IGNORED = "ignored; the default is used"

CORE, APP_LAYER = "core", "app"
TRAIN_DEFAULTS = TrainState()  # the Train page's defaults, which a bad URL value falls back to


@dataclass(frozen=True)
class Bad:
    id: str
    where: str
    value: Any  # text, CSV bytes, URL params, (file name, bytes), or training options
    message: str | None  # regex the user-facing message must match; None: no message at all
    outcome: str = REFUSED
    task: str = "agreement"
    limit: str | None = None  # the core.limits field a LimitError must name
    check: Callable[[Any], bool] | None = None  # core: what an accepted input turned into
    fields: dict | None = None  # URL, core: View fields after parsing
    widgets: dict | None = None  # URL, app: widget key -> value shown
    html: str | None = None  # a tag the user typed: it must stay literal text, never rendered
    markdown: str | None = None  # Markdown the user wrote: shown as typed, never drawn (escaped)
    layers: tuple[str, ...] = (CORE, APP_LAYER)
    bug: str | None = None  # a known defect (file, what happens): xfail(strict=True)
    bug_layers: tuple[str, ...] = (CORE, APP_LAYER)
    waits: bool = False  # app: nothing typed or uploaded yet: the page asks (info), no error


def _no_invisible(tokens) -> bool:
    return not any(_invisible(t) for t in tokens)


def _invisible(text: str) -> bool:
    """Control (Cc) or format (Cf: bidi overrides, zero-width) characters, line breaks aside."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text if ch not in "\n\t")


GOOD_TEXT = {
    "agreement": "the cats near the old red door were",
    "sentiment": "i like this phone",
    "names": "he took rose to a nice restaurant",
    "airline": "112 118 132 129 121 135 148",
    "adding": "0.3 0.7* 0.1 0.9* 0.2",
    "random": " ".join(["0.5"] * 64),
}
GOOD_CSV = b"month,passengers\n" + b"".join(f"m{i},{100 + 3 * i}\n".encode() for i in range(20))
PNG_JUNK = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
HUGE_CSV = b"passengers\n" + b"112\n" * (LIMITS.max_upload_bytes // 4 + 1)
RANDOM_BYTES = bytes((i * 7919 + 13) % 256 for i in range(4096))
HTML_NAME = "<b onmouseover=alert(1)>gru</b>.safetensors"
GRU_8 = save(torch.nn.GRU(2, 8).state_dict())
# 4 layers x 2 directions x 256 units: 3.9 M parameters, within the upload limits, but a trace
# of 600 steps would hold 1,228,800 values per state, over max_trace_values.
DEEP_GRU = save(torch.nn.GRU(2, 256, num_layers=4, bidirectional=True).state_dict())


def _char_model(heads: int = 1) -> bytes:
    """A whole char model's state_dict: embed (7 tokens x 3) -> LSTM(3, 4) -> heads."""
    torch.manual_seed(0)
    state = {"embed.weight": torch.randn(7, 3)}
    state |= {f"lstm.{k}": v for k, v in torch.nn.LSTM(3, 4).state_dict().items()}
    for k, name in enumerate(["fc", "topic"][:heads]):
        state |= {f"{name}.weight": torch.randn(7 - k, 4), f"{name}.bias": torch.randn(7 - k)}
    return save(state)


def _torchscript() -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.GRU(2, 3)), buffer)
    return buffer.getvalue()


def _onnx_without_recurrence() -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    weight = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weight])
    return helper.make_model(graph).SerializeToString()


def _keras_gru_h5(reset_after: bool) -> bytes:
    """A tf.keras 2 model file (`model.save('m.h5')`) holding one GRU layer, written with h5py
    in Keras's own layout: the config in `model_config`, the weights under `model_weights`."""
    import h5py
    units, inputs = 3, 2
    bias = np.zeros((2, 3 * units) if reset_after else (3 * units,), np.float32)
    config = {"class_name": "Functional", "config": {"name": "model", "layers": [
        {"class_name": "GRU", "name": "old_gru", "config": {
            "name": "old_gru", "units": units, "activation": "tanh",
            "recurrent_activation": "sigmoid", "use_bias": True, "go_backwards": False,
            "reset_after": reset_after}}]}}
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file.attrs["keras_version"], file.attrs["backend"] = b"2.4.0", b"tensorflow"
        file.attrs["model_config"] = json.dumps(config).encode()
        root = file.create_group("model_weights")
        root.attrs["layer_names"] = np.array([b"old_gru"])
        group = root.create_group("old_gru")
        names = [f"old_gru/gru_cell/{w}:0" for w in ("kernel", "recurrent_kernel", "bias")]
        group.attrs["weight_names"] = np.array([n.encode() for n in names])
        for name, array in zip(names, (np.ones((inputs, 3 * units), np.float32),
                                       np.ones((units, 3 * units), np.float32), bias)):
            group.create_dataset(name, data=array)
    return buffer.getvalue()


FORECASTER_3 = save({f"rnn.{k}": v for k, v in torch.nn.RNN(3, 5).state_dict().items()}
                    | {"head.weight": torch.randn(1, 5), "head.bias": torch.zeros(1)})
GOOD_CSV_3 = b"speed,angle,load\n1,2,3\n2,3,4\n3,4,5\n4,5,6\n"

CASES = [
    # -- typed text ---------------------------------------------------------------------------
    Bad("text-empty", TEXT, "", r"Type some input first \(the box is empty\)", waits=True),
    Bad("text-whitespace-only", TEXT, "  \n\t  ", r"Type some input first", waits=True),
    Bad("text-single-token-the-verb", TEXT, "was", r"type a sentence up to its verb"),
    Bad("text-single-token", TEXT, "cats", None, ACCEPTED,
        check=lambda e: len(e) == 1 and e.tokens == ["cats"] and not e.unknown),
    Bad("text-single-word-review", TEXT, "awful", None, ACCEPTED, task="sentiment",
        check=lambda e: len(e) == 1 and not e.unknown),
    Bad("text-only-unknown-words", TEXT, "zorblax quux florp", r"zorblax, quux, florp", REPORTED,
        check=lambda e: e.unknown == ["zorblax", "quux", "florp"] and e.inputs.tolist() == [1] * 3),
    Bad("text-emoji", TEXT, "the cat 😀 was", r"😀", REPORTED,
        check=lambda e: e.tokens == ["the", "cat", "😀"] and int(e.target) == VERBS.index("was")),
    Bad("text-only-emoji", TEXT, "😀🔥😀", r"😀, 🔥", REPORTED, task="sentiment",
        check=lambda e: e.tokens == ["😀", "🔥", "😀"] and e.unknown == ["😀", "🔥"]),
    Bad("text-arabic-rtl", TEXT, "مرحبا بالعالم", r"مرحبا, بالعالم", REPORTED,
        check=lambda e: e.tokens == ["مرحبا", "بالعالم"]),
    Bad("text-hebrew-rtl", TEXT, "שלום עולם", r"שלום, עולם", REPORTED, task="sentiment",
        check=lambda e: e.tokens == ["שלום", "עולם"]),
    Bad("text-arabic-indic-digits", TEXT, "١١٢ ١١٨ ١٣٢ ١٢٩", None, ACCEPTED, task="airline",
        check=lambda e: e.info["values"] == [112.0, 118.0, 132.0, 129.0]),
    Bad("text-nul-byte", TEXT, "the cat\x00 was", None, ACCEPTED,
        check=lambda e: e.tokens == ["the", "cat"]),
    Bad("text-ansi-escape-and-bell", TEXT, "i love this \x1b[31mphone\x07", None, ACCEPTED,
        task="sentiment", check=lambda e: _no_invisible(e.tokens)),
    Bad("text-bidi-override", TEXT, "\u202ethe cats", None, ACCEPTED,
        check=lambda e: e.tokens == ["the", "cats"], layers=(CORE,)),
    Bad("text-script-tag-words", TEXT, "<script>alert(1)</script>", r"<, script, >, alert",
        REPORTED, html="<script>alert(1)</script>",
        check=lambda e: not any("<script" in t for t in e.tokens) and "script" in e.unknown),
    Bad("text-html-tag-in-numbers", TEXT, "<b>112</b> 118 132",
        r"could not read '<b>112</b>' as a number", task="airline", html="<b>112</b>"),
    Bad("text-nan", TEXT, "112 NaN 130", r"'NaN' is not a finite number", task="airline"),
    Bad("text-inf", TEXT, "112 inf 130", r"'inf' is not a finite number", task="airline"),
    Bad("text-nan-adding", TEXT, "nan 0.5* 0.4*", r"'nan' is not a finite number", task="adding"),
    Bad("text-thousands-commas", TEXT, "1,200 1,300 1,250", r"1,200", task="airline"),
    Bad("text-decimal-commas", TEXT, "0,5 0,3* 0,2*", r"between 0 and 1.*got 5", task="adding"),
    Bad("text-units", TEXT, "12 kg 15 kg", r"could not read 'kg' as a number", task="airline"),
    Bad("text-single-number", TEXT, "112", r"need at least 2 values", task="airline"),
    Bad("text-negative-number", TEXT, "-5 10 20", r"all values must be positive", task="airline"),
    Bad("text-nul-in-a-number", TEXT, "112\x00 118", r"could not read '112\\x00' as a number",
        task="airline"),
    Bad("text-one-number-marked", TEXT, "0.3 0.7* 0.1", r"mark exactly two numbers.*1 marked",
        task="adding"),
    Bad("text-number-out-of-range", TEXT, "2 0.5* 0.4*", r"between 0 and 1.*got 2", task="adding"),
    Bad("text-wrong-count-per-step", TEXT, "1 2 3", r"64 numbers per timestep; got 3",
        task="random"),
    # issue 19, item 9: read as typed, never misread
    Bad("text-subnormal-passengers", TEXT, "1e-310 118 132 129", None, ACCEPTED, task="airline",
        check=lambda e: e.info["values"][0] == 1e-310),  # tiny, but positive: not "not positive"
    Bad("text-subnormal-in-adding", TEXT, "0.5 0.3* 0.2* 1e-320", None, ACCEPTED, task="adding",
        check=lambda e: len(e) == 4),
    Bad("text-beyond-float32", TEXT, " ".join(["1e39"] * 64),
        r"'1e39' is too large: the models compute in float32, whose numbers end at about "
        r"3\.4e\+38", task="random"),
    Bad("text-huge-passengers", TEXT, "1e308 1e308 1e308", None, ACCEPTED, task="airline",
        check=lambda e: e.info["values"] == [1e308] * 3),
    Bad("text-one-huge-month", TEXT, "112 118 1e39 130", None, ACCEPTED, task="airline",
        check=lambda e: e.info["values"][2] == 1e39),
    Bad("text-decomposed-accent", TEXT, "the cafe\u0301 was", r"café", REPORTED,
        check=lambda e: e.tokens == ["the", "café"] and e.unknown == ["café"]),
    Bad("text-dotted-capital-i", TEXT, "İstanbul is nice", r"istanbul", REPORTED, task="names",
        check=lambda e: e.tokens == ["istanbul", "is", "nice"]),  # one token, not "i̇stanbul"
    Bad("text-emoji-variation-selector", TEXT, "i like ❤\ufe0f this", r"❤", REPORTED,
        task="sentiment", check=lambda e: e.tokens == ["i", "like", "❤", "this"]),
    Bad("text-zero-width-space", TEXT, "the\u200b cats were", None, ACCEPTED,
        check=lambda e: e.tokens == ["the", "cats"]),
    Bad("text-too-long", TEXT, "a " * 1250,
        r"Text is too long: at most 2,000 characters; got 2,500", limit="max_text_chars",
        layers=(CORE,)),  # the page's box stops at 2,000 (max_chars); the URL: url-text-over-...
    Bad("text-too-many-words", TEXT, "the cat " * 150, r"at most 200 words, got 300"),
    # -- CSV uploads (airline) ------------------------------------------------------------------
    Bad("csv-empty-file", CSV, b"", r"The CSV file is empty"),
    Bad("csv-latin1-not-utf8", CSV, "month,passengers\nJän,112\nFéb,118\nMär,132\n".encode("latin-1"),
        r"could not be read as CSV: 'utf-8' codec can't decode"),
    Bad("csv-utf16", CSV, "month,passengers\n1949-01,112\n1949-02,118\n".encode("utf-16"),
        None, ACCEPTED, check=lambda e: e.info["values"] == [112, 118]),
    Bad("csv-utf16-without-its-mark", CSV,
        "month,passengers\n1949-01,112\n1949-02,118\n".encode("utf-16-le"),
        r"could not be read as CSV: it holds NUL characters"),
    Bad("csv-no-numeric-column", CSV, b"name,city\nann,paris\nbob,rome\n",
        r"no column of numbers\. Columns found: name, city"),
    Bad("csv-semicolons", CSV, b"month;passengers\n1949-01;112\n1949-02;118\n", None, ACCEPTED,
        check=lambda e: e.info["values"] == [112, 118]),
    Bad("csv-semicolons-and-decimal-commas", CSV, b"month;passengers\n1949-01;112,5\n"
        b"1949-02;118,2\n1949-03;130,7\n", None, ACCEPTED,
        check=lambda e: e.info["values"] == [112.5, 118.2, 130.7]),
    Bad("csv-decimal-commas-in-one-column", CSV, b"passengers\n112,5\n118,2\n130,7\n", None,
        ACCEPTED, check=lambda e: e.info["values"] == [112.5, 118.2, 130.7]),
    Bad("csv-ragged-row", CSV, b"month,passengers\n1949-01,112\n1949-02,118,5\n1949-03,130\n",
        r"Row 2 of the data \(line 3 of the file\) has 3 fields, but the first row names 2 "
        r"columns"),
    Bad("csv-two-separators", CSV, b"a;b,c\n1;2,3\n4;5,6\n", r"split evenly on both"),
    Bad("csv-semicolon-thousands-or-decimal", CSV, b"month;passengers\n1949-01;1,200\n"
        b"1949-02;1,300\n", r"could be a decimal or a number with a thousands separator"),
    Bad("csv-no-header", CSV, b"112\n118\n132\n", r"names its columns, but this one holds a "
        r"number"),
    Bad("csv-20000-columns", CSV, (",".join(f"c{i}" for i in range(20_000)) + "\n"
                                   + ",".join(["1"] * 20_000) + "\n").encode(),
        r"The CSV has 20,000 columns; at most 100 are read"),
    Bad("csv-header-only", CSV, b"month,passengers\n", r"no (data )?rows|only a header"),
    Bad("csv-over-the-upload-limit", CSV, HUGE_CSV, r"larger than 20 MiB"),
    Bad("csv-png-named-csv", CSV, PNG_JUNK, r"could not be read as CSV"),
    Bad("csv-random-bytes", CSV, bytes(range(256)) * 8, r"could not be read as CSV"),
    Bad("csv-inf-value", CSV, b"passengers\n112\ninf\n130\n",
        r"missing or non-finite value \(NaN or inf\)"),
    Bad("csv-empty-cell", CSV, b"month,passengers\n1949-01,112\n1949-02,\n1949-03,130\n",
        r"missing|NaN|empty"),
    Bad("csv-quoted-thousands", CSV, b'month,passengers\n1949-01,"1,200"\n1949-02,"1,300"\n'
        b'1949-03,"1,250"\n', r"“1,200”; in a comma-separated file a comma inside a number "
        r"could be a decimal comma or a thousands separator"),
    Bad("csv-quoted-decimal-comma", CSV, b'month,passengers\n1949-01,"118,2"\n1949-02,"119,4"\n',
        r"“118,2”; in a comma-separated file"),
    Bad("csv-units-in-cells", CSV, b"month,passengers\n1949-01,112 k\n1949-02,118 k\n",
        r"no column of numbers"),
    Bad("csv-one-row", CSV, b"passengers\n112\n", r"need at least 2 values"),
    Bad("csv-zero-and-negative", CSV, b"passengers\n112\n0\n-3\n", r"must be positive"),
    Bad("csv-too-many-rows", CSV, b"passengers\n" + b"120\n" * 3000,
        rf"more than {LIMITS.max_seq_len + 1:,} rows of data"),
    # -- sequence length over the limit -----------------------------------------------------------
    Bad("length-over-the-task-range", LENGTH, 5000, r"from 2 to 1000, got 5000", task="adding",
        layers=(CORE,)),
    # -- Explore URL parameters: ignored, defaults kept ------------------------------------------
    Bad("url-unknown-task-and-cell", URL, dict(task="nope", cell="<script>alert(1)</script>"),
        None, IGNORED, fields=dict(task="agreement", cell="lstm"),
        widgets=dict(explore_task="agreement", explore_cell="lstm"), html="<script>alert(1)</script>"),
    Bad("url-length-nan", URL, dict(task="adding", source="random", len="NaN"), None, IGNORED,
        fields=dict(len=0), widgets=dict(explore_len_adding=50)),
    Bad("url-length-over-the-limit", URL, dict(task="adding", source="random", len="5000"), None,
        IGNORED, fields=dict(len=0), widgets=dict(explore_len_adding=50)),
    Bad("url-length-negative", URL, dict(task="adding", source="random", len="-5"), None, IGNORED,
        fields=dict(len=0), widgets=dict(explore_len_adding=50)),
    Bad("url-length-below-the-task-range", URL, dict(task="adding", source="random", len="1"),
        None, IGNORED, fields=dict(len=0), widgets=dict(explore_len_adding=50)),
    Bad("url-seed-inf", URL, dict(task="adding", source="random", seed="inf"), None, IGNORED,
        fields=dict(seed=0), widgets=dict(explore_seed=0)),
    Bad("url-seed-negative-and-float", URL, dict(task="adding", source="random", seed="-1",
                                                 sample="2.5"), None, IGNORED,
        fields=dict(seed=0, sample=0), widgets=dict(explore_seed=0, explore_sample=0)),
    Bad("url-sample-over-int32", URL, dict(task="adding", source="random", sample=str(2**40)),
        None, IGNORED, fields=dict(sample=0), widgets=dict(explore_sample=0)),
    Bad("url-unit-and-step-out-of-range", URL,
        dict(task="adding", source="random", unit="999999999", t="abc", pick="zzz", layer="-1"),
        None, IGNORED, fields=dict(unit=0, t=0, pick="index", layer=0),
        widgets=dict(explore_unit=0, explore_t=0, explore_pick="index")),
    Bad("url-csv-input-for-a-word-task", URL, dict(task="adding", source="random", input="csv"),
        None, IGNORED, fields=dict(input="sample"), widgets=dict(explore_input="sample")),
    Bad("url-text-over-the-limit", URL, dict(input="text", source="random", text="x" * 2001),
        r"Type some input first", fields=dict(text=""), widgets=dict(explore_text=""),
        waits=True),
    Bad("url-script-tag-as-numbers", URL, dict(task="airline", source="random", input="text",
                                               text="<script>alert(1)</script>"),
        r"could not read '<script>alert\(1\)</script>' as a number",
        fields=dict(text="<script>alert(1)</script>"), html="<script>alert(1)</script>"),
    Bad("url-upload-source-without-a-file", URL, dict(task="adding", source="upload"),
        r"Upload your model: a PyTorch file", fields=dict(source="upload"),
        waits=True),
    # -- Gradient lab and Train URLs (core.views.lab.LabState, core.views.train.TrainState; their
    #    own tests check the parsing: tests/test_lab.py, tests/test_train_page.py) -------------
    Bad("lab-url-nan-radius-negative-length", LAB_URL,
        dict(rescale="1", radius="nan", len="-5", init="<script>", seed="nan"), None, IGNORED,
        widgets=dict(lab_radius=1.0, lab_len=100, lab_init="default", lab_seed=0),
        layers=(APP_LAYER,)),
    Bad("lab-url-seed-inf", LAB_URL, dict(seed="inf"), None, IGNORED, widgets=dict(lab_seed=0),
        layers=(APP_LAYER,)),
    Bad("lab-url-words-for-numbers", LAB_URL, dict(len="abc", hidden="abc", lr="abc",
                                                   window="1e400"), None, IGNORED,
        widgets=dict(lab_len=100, lab_hidden=32, lab_lr=0.1, lab_window=10), layers=(APP_LAYER,)),
    Bad("search-url-odd-study-name-and-numbers", SEARCH_URL,
        dict(study="my study!<b>", trials="1e400", workers="9", steps="-5", task="<b>adding</b>"),
        None, IGNORED, widgets=dict(search_trials=12, search_workers=2, search_steps=1000,
                                    search_task="adding"), layers=(APP_LAYER,)),
    Bad("search-url-path-as-study-name", SEARCH_URL, dict(study="../../etc/passwd", trials="0"),
        None, IGNORED, widgets=dict(search_trials=12), layers=(APP_LAYER,)),
    Bad("train-url-steps-inf", TRAIN_URL, dict(steps="inf"), None, IGNORED,
        widgets=dict(train_steps=TRAIN_DEFAULTS.steps), layers=(APP_LAYER,)),
    Bad("train-url-seconds-layers-seed-non-finite", TRAIN_URL,
        dict(seconds="-inf", layers="1e400", seed="inf"), None, IGNORED,
        widgets=dict(train_seconds=60, train_layers=1, train_seed=0), layers=(APP_LAYER,)),
    Bad("train-url-nan-rate-and-words", TRAIN_URL,
        dict(lr="nan", hidden="abc", task="no-such-task", cells="<b>all</b>"), None, IGNORED,
        widgets=dict(train_lr=TRAIN_DEFAULTS.lr, train_hidden=TRAIN_DEFAULTS.hidden,
                     train_task="adding", train_cells="all"),
        html="<b>all</b>", layers=(APP_LAYER,)),
    # -- checkpoints, end to end (the loader's own catalogue: tests/test_loading.py) --------------
    Bad("weights-random-bytes-with-an-html-name", WEIGHTS,
        ("<img src=x onerror=alert(1)>.pt", RANDOM_BYTES),
        r"`<img src=x onerror=alert\(1\)>\.pt` is not a PyTorch checkpoint",
        html="<img src=x onerror=alert(1)>"),
    Bad("weights-empty-file", WEIGHTS, ("empty.safetensors", b""),
        r"`empty\.safetensors` is empty \(0 bytes\)"),
    Bad("weights-good-file-with-an-html-name", WEIGHTS, (HTML_NAME, GRU_8), None, ACCEPTED,
        check=lambda choice: HTML_NAME in choice.label and choice.rnn.hidden_size == 8,
        html="<b onmouseover=alert(1)>"),
    Bad("weights-bidi-override-in-the-name", WEIGHTS, ("\u202egnp.safetensors", GRU_8), None,
        ACCEPTED, check=lambda choice: "\u202e" not in choice.label and "gnp.safetensors"
        in choice.label and choice.rnn.hidden_size == 8),
    Bad("weights-too-big-to-trace-this-long", TRACE, ("deep.safetensors", DEEP_GRU),
        r"Too much to trace: 4 layer\(s\) × 2 direction\(s\) × 600 steps × 256 units = "
        r"1,228,800 values per state; the limit is 1,024,000\. With this model, use at most 500 "
        r"steps", task="adding", limit="max_trace_values"),
    # -- training that diverges -------------------------------------------------------------------
    Bad("training-diverges-to-nan", TRAINING,
        dict(cell="rnn", hidden_size=64, optimizer="sgd", learning_rate=1.0, clip_norm=None,
             steps=200),
        r"Diverged: the loss became (nan|inf) at step \d+: training stopped and the last weights "
        r"that gave a finite loss were kept", REPORTED, task="adding"),
    # -- training runs against the memory budget (issue 19, item 1): refused before anything
    #    starts, or scaled with a note; the notes' own tests: tests/test_budget.py -------------
    Bad("training-too-big-for-the-memory-budget", TRAINING_SIZE,
        dict(cells="gru", hidden="512", layers="3", len="1000"),
        r"Cannot start training: Too big to train here: a 3-layer GRU with 512 units on "
        r"sequences of 1,000 steps needs about \d+ MB to train on one sequence at a time; the "
        r"memory budget of a training run is 192 MB\. Use shorter sequences, fewer units or "
        r"fewer layers\.", task="adding", limit="max_training_bytes"),
    Bad("training-all-three-too-big", TRAINING_SIZE,
        dict(cells="all", hidden="512", layers="4", len="1000"),
        r"Cannot start training: (A 4-layer LSTM with 512 units has [\d,]+ parameters|Too big "
        r"to train here)", task="adding", limit="max_params"),
    Bad("training-batch-scaled-to-fit", TRAINING_SIZE,
        dict(cells="lstm", hidden="512", layers="2", len="1000"),
        r"Batch scaled from 50 to 1 sequence to fit the memory budget of 192 MB per training "
        r"run", REPORTED, task="adding", layers=(CORE,)),
    # -- Markdown a visitor wrote (issue 19, item 7): shown as typed, never drawn. The browser's
    #    side (nothing fetched, no link, no LaTeX): tests/e2e/test_injection_browser.py --------
    *(Bad(f"url-markdown-{name}", URL, dict(task="adding", source="random", input="text",
                                           text=typed),
          rf"could not read '{re.escape(typed)}' as a number", fields=dict(text=typed),
          markdown=typed)
      for name, typed in [("image", "![x](https://example.invalid/a.png)"),
                          ("link", "go[log_in](https://example.invalid/phish)"),
                          ("bare-url", "https://example.invalid/bare"),
                          ("www", "www.example.invalid"),
                          ("e-mail", "me@example.invalid"),
                          ("latex", "$x^2+y_1$"),
                          ("colour", ":red[alarm]!"),
                          ("heading", "#Heading")]),
    Bad("compare-url-markdown-image", COMPARE_URL,
        dict(task="adding", input="text", text="![x](https://example.invalid/a.png)"),
        r"could not read '!\[x\]\(https://example\.invalid/a\.png\)' as a number",
        markdown="![x](https://example.invalid/a.png)", layers=(APP_LAYER,)),
    # -- a practitioner's own model (issue 15): formats, parts and their own input -------------
    Bad("weights-torchscript-archive", WEIGHTS, ("scripted.pt", _torchscript()),
        r"`scripted\.pt` is a TorchScript archive \(torch\.jit\.save\).*never runs code from a "
        r"file\. To get a state_dict from it.*torch\.jit\.load"),
    Bad("weights-onnx-without-recurrent-weights", WEIGHTS, ("linear.onnx",
                                                            _onnx_without_recurrence()),
        r"`linear\.onnx` has no recurrent layer: no ONNX LSTM, GRU or RNN node .*`MatMul`"),
    Bad("weights-truncated-hdf5", WEIGHTS, ("model.h5", _keras_gru_h5(True)[:1500]),
        r"`model\.h5` is truncated or damaged: it starts like an HDF5 file but h5py cannot "
        r"read it"),
    Bad("weights-keras-gru-with-reset-after-false", WEIGHTS, ("old.h5", _keras_gru_h5(False)),
        r"layer `old_gru` is a GRU with reset_after=False .*nn\.GRU cannot|layer `old_gru` is a "
        r"GRU with reset_after=False"),
    Bad("weights-keras-gru-read", WEIGHTS, ("new.h5", _keras_gru_h5(True)), None, ACCEPTED,
        check=lambda choice: isinstance(choice.rnn, torch.nn.GRU) and choice.rnn.hidden_size == 3),
    Bad("files-vocabulary-size-differs-from-the-embedding", FILES,
        [("charlm.safetensors", _char_model()), ("vocab.json", json.dumps(list("abcde")).encode())],
        r"The vocabulary `vocab\.json` has 5 tokens, but the embedding `embed` has 7 rows"),
    Bad("files-whole-model-with-two-heads", FILES,
        [("twoheads.safetensors", _char_model(heads=2)), ("vocab.json", json.dumps(list("abcdefg"))
                                                 .encode())], None, ACCEPTED,
        check=lambda choice: choice.user.head_name == "fc" and
        "Also fit as the head: `topic`; pick one below." in choice.user.note),
    Bad("own-file-csv-with-the-wrong-number-of-columns", OWN_FILE,
        ("two.csv", b"speed,angle\n1,2\n2,3\n3,4\n"),
        r"`two\.csv` has 1 column of numbers|`two\.csv` has 2 columns of numbers \(`speed`, "
        r"`angle`\), but the model reads 3 features per step"),
    Bad("weights-markdown-file-name", WEIGHTS, ("![w](x.png) $y$ :red[z].safetensors", GRU_8),
        None, ACCEPTED, markdown="![w](x.png) $y$ :red[z].safetensors",
        check=lambda choice: choice.rnn.hidden_size == 8),
]


def _params(layer: str):
    out = []
    for case in CASES:
        if layer not in case.layers:
            continue
        marks = []
        if case.bug and layer in case.bug_layers:
            marks.append(pytest.mark.xfail(strict=True, reason=case.bug))
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


def test_the_catalogue_is_complete():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 100  # issue 19: every probe of the hunt, at least 100 cases
    assert len(_params(CORE)) >= 40 and len(_params(APP_LAYER)) >= 40
    for case in CASES:
        assert (case.message is None) == (case.outcome in (ACCEPTED, IGNORED)), case.id
        assert case.where != URL or case.fields, case.id


# =============================================================================================
# core: the function the page calls


def _train_options(case: Bad):
    options = dict(case.value)
    cell = options.pop("cell")
    steps = options.pop("steps")
    return cell, make_train_config(case.task, steps=steps, seconds=60, **options)


def _core(case: Bad):
    """Feed the input to what the page calls with it; return what it gave back."""
    if case.where == TEXT:
        return ex.make_example(ex.ExploreState(task=case.task, input="text", text=case.value))
    if case.where == CSV:
        values, _ = csv_column_values(case.value)
        return ex.make_example(ex.ExploreState(task="airline", input="csv"), values)
    if case.where == LENGTH:
        return ex.make_example(ex.ExploreState(task=case.task, input="sample", len=case.value))
    if case.where == WEIGHTS:
        name, data = case.value
        return ex.resolve_model(ex.ExploreState(task="adding", cell="gru", source="upload"), (data, name))
    if case.where == TRACE:
        name, data = case.value
        view = ex.ExploreState(task="adding", source="upload", len=600)
        return ex.run(view, ex.resolve_model(view, (data, name)), ex.make_example(view))
    if case.where == FILES:
        (name, data), *extra = [(n, d) for n, d in case.value]
        upload = Upload(data, name, extra=tuple((d, n) for n, d in extra))
        return ex.resolve_model(ex.ExploreState(source="upload"), upload)
    if case.where == OWN_FILE:
        name, data = case.value
        return read_matrix(data, name, 3)
    raise AssertionError(f"no core runner for {case.where}")


@pytest.mark.parametrize("case", _params(CORE))
def test_core(case: Bad):
    if case.where == URL:
        view = ex.ExploreState.from_query(case.value)
        assert {k: getattr(view, k) for k in case.fields} == case.fields
        if case.message:  # the view is valid, but what it asks for cannot run yet: it says why
            with pytest.raises(ValueError, match=case.message):
                ex.resolve_model(view)
                ex.make_example(view)
        return
    if case.where == TRAINING_SIZE:
        runs = TrainState.from_query({"task": case.task, **case.value})
        if case.outcome == REFUSED:
            with pytest.raises(LimitError, match=case.message.split(": ", 1)[1]) as error:
                plan_runs(runs.runs())
            assert error.value.limit == case.limit
        else:
            notes = [note for run in plan_runs(runs.runs()) for note in run.notes]
            assert any(re.search(case.message, note) for note in notes), notes
        return
    if case.where == TRAINING:
        cell, config = _train_options(case)
        result = train(case.task, cell, config)
        kind, sentence = describe_result(result)
        assert result.diverged and kind == "error"
        assert re.search(case.message, sentence), sentence
        assert all(torch.isfinite(p).all() for p in result.model.parameters())  # last good kept
        return
    if case.outcome == REFUSED:
        with pytest.raises(ValueError, match=case.message) as error:
            _core(case)
        if case.limit:
            assert isinstance(error.value, LimitError) and error.value.limit == case.limit
        return
    accepted = _core(case)
    if case.where in (WEIGHTS, FILES):
        assert case.check(accepted), accepted.label
        return
    assert case.check(accepted), (accepted.tokens, accepted.unknown)
    if case.outcome == REPORTED:
        assert re.search(case.message, ", ".join(accepted.unknown)), accepted.unknown
    else:
        assert not accepted.unknown


# =============================================================================================
# app: the real page under AppTest


def _open(path: str, **query) -> AppTest:
    at = AppTest.from_file(path, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _messages(at: AppTest, kind: str) -> list[str]:
    """What the reader sees in every alert of `kind` (user text in it is escaped Markdown)."""
    return [shown(m.value) for m in getattr(at, kind)]


def _chart(at: AppTest) -> str:
    charts = at.get("plotly_chart")
    assert len(charts) == 1, "the Explore chart is missing"
    return charts[0].proto.spec


def _state(at: AppTest) -> tuple:
    """What the user sees of their view: the chart, the model's caption, the model choices."""
    choices = {}
    for key in ("explore_task", "explore_cell", "explore_source", "explore_seed", "explore_input"):
        try:
            choices[key] = _widget(at, key)
        except KeyError:  # not drawn for this model source / input
            pass
    return _chart(at), [c.value for c in at.main.caption], choices


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _assert_readable_and_escaped(at: AppTest, case: Bad) -> None:
    """No invisible characters in a message or a chart label; user text never reaches HTML,
    and Markdown the user wrote is shown as the characters they typed (ui.text.plain)."""
    for kind in ("error", "warning", "info"):
        for body in _messages(at, kind):
            assert not _invisible(body), f"invisible characters in the {kind}: {body!r}"
    if case.markdown is not None:
        bodies = [m.value for kind in ("error", "warning", "info", "caption", "markdown")
                  for m in getattr(at, kind)]
        raw = re.compile(r"(?<!\\)" + re.escape(case.markdown))  # not begun by an escape
        assert not any(raw.search(body) for body in bodies), "user Markdown left active"
        assert any(case.markdown in shown(body) for body in bodies), "user text not shown"
    chart = at.get("plotly_chart")
    if chart:
        for text in _strings(json.loads(chart[0].proto.spec).get("data", [])):
            assert not _invisible(text), f"invisible characters in the chart: {text!r}"
    if case.html is None:
        return
    raw_html = [e.proto.body for e in at.get("html")]
    raw_html += [m.value for m in (*at.markdown, *at.caption) if m.proto.allow_html]
    assert not any(case.html in body for body in raw_html), "user text in unsafe HTML"
    if chart:  # Plotly renders a subset of HTML (<b>, <a href>, ...) in its labels
        labels = _strings(json.loads(chart[0].proto.spec))
        assert not any(case.html in label for label in labels), "user's tag in a chart label"
    if case.outcome == REFUSED:  # the message shows the tag as typed: literal text (alerts are
        # Markdown without unsafe_allow_html, so the browser shows it escaped)
        assert any(case.html in body for body in _messages(at, "error"))


def _widget(at: AppTest, key: str):
    for kind in ("selectbox", "radio", "number_input", "slider", "select_slider", "text_area",
                 "toggle", "button_group"):
        for element in at.get(kind):
            if getattr(element, "key", None) == key:
                return element.value
    raise KeyError(f"no widget with key {key!r}")


def _app_bad_value(case: Bad) -> AppTest:
    """Open the page, reach a good view, then give the bad input where a user would."""
    if case.where == TEXT:
        at = _open(APP, task=case.task, source="random", input="text", text=GOOD_TEXT[case.task])
        before = _good(at)
        at.text_area(key="explore_text").input(case.value).run()
        assert at.text_area(key="explore_text").value == case.value  # the user's text is not lost
        return at, before
    if case.where == CSV:
        at = _open(APP, task="airline", source="random", input="csv")
        at.get("file_uploader")[0].set_value(("passengers.csv", GOOD_CSV, "text/csv"))
        at.run()
        before = _good(at)
        at.get("file_uploader")[0].set_value(("data.csv", case.value, "text/csv"))
        return at.run(), before
    if case.where in (WEIGHTS, TRACE):
        length = {"len": "600"} if case.where == TRACE else {}
        at = _open(APP, task="adding", cell="gru", source="upload", **length)
        at.get("file_uploader")[0].set_value(
            ("mine.safetensors", save(torch.nn.GRU(2, 6).state_dict()), "application/octet-stream"))
        at.run()
        before = _good(at)
        name, data = case.value
        at.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
        return at.run(), before
    if case.where == FILES:
        at = _open(APP, source="upload")
        at.get("file_uploader")[0].set_value(("mine.safetensors", _char_model(),
                                              "application/octet-stream")).run()
        at.radio(key="explore_own_kind").set_value("ids").run()
        at.text_input(key="explore_own_ids").input("1 2 3 4").run()
        before = _good(at)
        (name, data), *beside = case.value
        at.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
        for extra_name, extra in beside:  # the vocabulary, in the uploader beside the weights
            at.get("file_uploader")[1].set_value((extra_name, extra, "application/json"))
        return at.run(), before
    if case.where == OWN_FILE:
        at = _open(APP, source="upload")
        at.get("file_uploader")[0].set_value(("forecaster.safetensors", FORECASTER_3,
                                              "application/octet-stream")).run()
        at.radio(key="explore_own_kind").set_value("file").run()
        at.get("file_uploader")[2].set_value(("good.csv", GOOD_CSV_3, "text/csv")).run()
        before = _good(at)
        name, data = case.value
        at.get("file_uploader")[2].set_value((name, data, "text/csv"))
        return at.run(), before
    raise AssertionError(f"no app runner for {case.where}")


def _good(at: AppTest) -> tuple:
    _assert_clean(at)
    assert not at.error, _messages(at, "error")
    return _state(at)


@functools.cache
def _small_trained_model():
    return train("adding", "gru", TrainConfig(hidden_size=4, max_steps=2, heldout_size=20))


def _app_training_size(case: Bad) -> None:
    """Train pressed with a run too big for the server: refused in words, nothing started, the
    models the session trained before kept."""
    at = _open(TRAIN_PAGE, task=case.task, **case.value)
    earlier = {"adding · GRU · 10:00:00": _small_trained_model()}
    at.session_state[TRAINED] = dict(earlier)
    at.run()
    next(b for b in at.button if b.label == "Train").click().run()
    _assert_clean(at)
    assert any(re.search(case.message, e) for e in _messages(at, "error")), _messages(at, "error")
    assert at.session_state[TRAINED].keys() == earlier.keys()
    assert session_key("train") not in at.session_state or not at.session_state[
        session_key("train")].running


def _app_training(case: Bad) -> None:
    options = case.value
    at = _open(TRAIN_PAGE, task=case.task, cells=options["cell"], optimizer=options["optimizer"],
               lr=str(options["learning_rate"]), clip="off", hidden=str(options["hidden_size"]),
               steps=str(options["steps"]))
    _assert_clean(at)
    next(b for b in at.button if b.label == "Train").click().run()
    _assert_clean(at)
    assert at.session_state[session_key("train")].wait(timeout=60)
    at.run()
    _assert_clean(at)
    assert any(re.search(case.message, e) for e in _messages(at, "error")), _messages(at, "error")
    (result,) = at.session_state[TRAINED].values()  # the model is kept ...
    assert result.diverged
    assert all(torch.isfinite(p).all() for p in result.model.parameters())  # ... its good weights
    assert any(b.proto.label == "Weights" for b in at.get("download_button"))  # and downloadable


@pytest.mark.parametrize("case", _params(APP_LAYER))
def test_app(case: Bad):
    if case.where == TRAINING_SIZE:
        return _app_training_size(case)
    if case.where == TRAINING:
        return _app_training(case)
    if case.where in (URL, LAB_URL, TRAIN_URL, COMPARE_URL, SEARCH_URL):
        page = {URL: APP, LAB_URL: LAB_PAGE, TRAIN_URL: TRAIN_PAGE,
                COMPARE_URL: COMPARE_PAGE, SEARCH_URL: SEARCH_PAGE}[case.where]
        at = _open(page, **case.value)
        _assert_clean(at)
        errors = _messages(at, "error")
        if case.message is None or case.waits:
            assert not errors, errors
        said = _messages(at, "info") if case.waits else errors
        if case.message is not None:
            assert any(re.search(case.message, e) for e in said), said
        for key, value in (case.widgets or {}).items():
            assert _widget(at, key) == value, key
        if case.where == URL and case.message is None:
            _chart(at)  # the view that the defaults give is drawn
        _assert_readable_and_escaped(at, case)
        return

    at, before = _app_bad_value(case)
    _assert_clean(at)
    errors, infos = _messages(at, "error"), _messages(at, "info")
    if case.outcome == REFUSED:
        if case.waits:  # nothing typed yet: the page asks, in an info, not an error
            assert not errors, errors
        assert any(re.search(case.message, e) for e in (infos if case.waits else errors)), errors
        # what was wrong may be said where the input is given (a CSV); the view stays, and says so
        assert any("last good view" in e or "last view stays" in e for e in errors + infos)
        assert _state(at) == before  # the last good chart, the same model
    else:
        assert not errors, errors
        assert _chart(at) != before[0]  # the new input is drawn
        infos = _messages(at, "info")
        if case.outcome == REPORTED:
            assert any(re.search(case.message, i) for i in infos), infos
        else:
            assert not any("Not in the vocabulary" in i for i in infos), infos
        if case.where == FILES:
            assert any(visible(case.value[0][0]) in shown(c.value) for c in at.caption)
        elif case.where == WEIGHTS:  # the file's name is shown as typed, in Markdown (escaped)
            assert any(visible(case.value[0]) in shown(c.value) and not c.proto.allow_html
                       for c in at.caption)
    _assert_readable_and_escaped(at, case)
