"""core.training.zoo and models/: every shipped model loads, and reaches its quality on fresh data."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import core.io.loading
from core.cells import CELLS
from core.model import SequenceModel, count_parameters
from core.tasks import ALL_TASKS, TASKS, get_task
from core.training.zoo import (
    MODELS_DIR, RECIPES, ROOT, ZOO_THREADS, available, build_model, load_model, made_with,
    model_info, paths, recipe, recurrent_parts, source_hash, training_sources,
)

ALL = [(t, c) for t in ALL_TASKS for c in CELLS]
GATED = ("lstm", "gru")
FRESH = 424242  # held-out seed used by no training run and by no metadata score


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, before))
    yield
    torch.set_num_threads(before)


def test_every_task_and_cell_is_shipped_and_small():
    assert available() == ALL
    size = sum(p.stat().st_size for t, c in ALL for p in paths(t, c))
    assert size < 5 * 2**20  # a few MB at most


@pytest.mark.parametrize("task, cell", ALL)
def test_metadata_describes_the_model_honestly(task, cell):
    info = model_info(task, cell)
    model = load_model(task, cell)
    assert (info.task, info.cell, info.spec.cell) == (task, cell, cell)
    assert info.param_count == count_parameters(model)
    assert info.rnn_param_count == sum(count_parameters(rnn)
                                       for rnn in recurrent_parts(model).values())
    assert info.status == "finished" and info.steps == RECIPES[task].max_steps
    assert info.train_seconds > 0 and info.seed == recipe(task, cell).seed
    expected = recipe(task, cell).to_dict()
    assert {k: expected.get(k) for k in info.config} == info.config  # retrain if this fails
    assert info.vocab == (get_task(task).vocab.words if get_task(task).vocab else None)
    h = info.heldout
    assert h.baseline_name == get_task(task).baseline_name and h.n >= 36
    # the recorded score is what the model really scores on that held-out set
    again = get_task(task).evaluate(model, seed=info.heldout_seed, n=h.n,
                                    seq_len=info.heldout_seq_len)
    # (float rounding on another CPU may flip a borderline example or two, no more)
    assert again.value == pytest.approx(h.value, rel=1e-3, abs=3 / h.n)
    assert again.baseline == pytest.approx(h.baseline, rel=1e-6)


def test_load_model_is_cached_and_in_eval_mode():
    model = load_model("adding", "lstm")
    assert load_model("adding", "lstm") is model
    assert isinstance(model, SequenceModel) and not model.training
    assert isinstance(model.rnn, torch.nn.LSTM) and model.rnn.batch_first


def test_adding_model_takes_any_length():
    model = load_model("adding", "gru")
    for T in (10, 50, 200):
        x = get_task("adding").heldout(1, 4, T).inputs
        with torch.no_grad():
            assert model(x).shape == (4,)


@pytest.mark.parametrize("cell", GATED)
def test_adding_gated_cells_solve_t50(cell):
    score = get_task("adding").evaluate(load_model("adding", cell), seed=FRESH, n=2000, seq_len=50)
    assert score.value < 0.01 and score.baseline == pytest.approx(0.167, abs=0.01)


@pytest.mark.parametrize("cell", GATED)
def test_adding_gated_cells_work_at_the_lengths_a_user_picks(cell):
    task = get_task("adding")
    for T in (10, 25, 100):
        assert task.evaluate(load_model("adding", cell), seed=FRESH, n=500, seq_len=T).value < 0.02


@pytest.mark.parametrize("cell", GATED)
def test_agreement_gated_cells_up_to_distance_20_and_beyond(cell):
    task = get_task("agreement")
    model = load_model("agreement", cell)
    assert task.evaluate(model, seed=FRESH, n=2000, seq_len=20).value >= 0.95
    rows = task.accuracy_by_distance(model, seed=FRESH, per_distance=40, max_distance=40)
    assert min(r["accuracy"] for r in rows) >= 0.85  # every distance the app shows, up to 40


def _short_and_long(rows: list[dict]) -> tuple[float, float]:
    """Mean accuracy at distances 1-3 and at 20-40."""
    short = [r["accuracy"] for r in rows if r["distance"] <= 3]
    long = [r["accuracy"] for r in rows if r["distance"] >= 20]
    return sum(short) / len(short), sum(long) / len(long)


def test_agreement_rnn_handles_short_spans_and_fails_long_ones():
    # The lesson of the Compare page: the vanilla RNN gets the verb right when the subject is
    # near and falls to chance when it is far, not a flat line at chance or at 100%.
    task = get_task("agreement")
    rows = task.accuracy_by_distance(load_model("agreement", "rnn"), seed=FRESH,
                                     per_distance=100, max_distance=40)
    short, long = _short_and_long(rows)
    assert short >= 0.9 and long <= 0.65 and short - long >= 0.3
    short, long = _short_and_long(model_info("agreement", "rnn").extra["accuracy_by_distance"])
    assert short >= 0.9 and long <= 0.65  # what the metadata (and the app) shows says the same


def test_agreement_metadata_has_accuracy_by_distance():
    for cell in CELLS:
        rows = model_info("agreement", cell).extra["accuracy_by_distance"]
        assert [r["distance"] for r in rows] == list(range(1, 41))


@pytest.mark.parametrize("cell", GATED)
def test_airline_gated_cells_beat_persistence(cell):
    score = get_task("airline").evaluate(load_model("airline", cell))
    assert score.baseline == pytest.approx(50.3, abs=0.1)
    assert score.value < score.baseline
    assert score.extra["look_back"] == 24
    for look_back in (12, 36):  # any look-back in the trained range
        other = get_task("airline").evaluate(load_model("airline", cell), seq_len=look_back)
        assert other.value < other.baseline


@pytest.mark.parametrize("cell", GATED)
def test_sentiment_gated_cells(cell):
    task = get_task("sentiment")
    model = load_model("sentiment", cell)
    assert task.evaluate(model, seed=FRESH, n=2000, seq_len=40).value >= 0.9
    turned = task.encode("i like this product . i bought it last month , "
                         "but one bad feature made it worse")
    plain = task.encode("i like this product . i bought it last month")
    with torch.no_grad():
        assert task.classes[int(model(turned.inputs).argmax())] == "negative"
        assert task.classes[int(model(plain.inputs).argmax())] == "positive"


@pytest.mark.parametrize("cell", CELLS)
def test_names_one_direction_guesses_where_only_the_words_after_decide(cell):
    """The bidirectional lesson on fresh held-out sentences: a one-direction model is at
    chance on the words only what follows decides, and right on the rest."""
    score = get_task("names").evaluate(load_model("names", cell), seed=FRESH, n=1000)
    after, rest = score.extra["decided_after"], score.extra["rest"]
    assert after["words"] > 500 and 0.4 < after["accuracy"] < 0.6
    assert rest["accuracy"] >= 0.98 and score.value >= 0.88


@pytest.mark.parametrize("cell", CELLS)
def test_names_bidirectional_reads_the_answer_back_from_the_end(cell):
    task = get_task("names")
    model = load_model("names", cell, "bidirectional")
    score = task.evaluate(model, seed=FRESH, n=1000)
    assert score.extra["decided_after"]["accuracy"] >= 0.98 and score.value >= 0.99
    for text, names in [("rose took him to a nice restaurant . rose bloomed in the garden",
                         ["rose"]),
                        ("he took rose to a nice restaurant . she gave anna a rose",
                         ["rose", "anna"])]:
        example = task.encode(text)
        with torch.no_grad():
            tags = model(example.inputs).argmax(-1).tolist()
        assert [w for w, t in zip(example.tokens, tags) if t == 1] == names


@pytest.mark.parametrize("cell", CELLS)
def test_random_labels_fit_the_training_set_and_stay_at_chance(cell):
    score = get_task("random").evaluate(load_model("random", cell), seed=FRESH, n=2000)
    assert abs(score.value - 0.5) < 0.05  # chance: 2000 fresh samples, 4.5 standard errors
    assert score.extra["train_accuracy"] > 0.9


def test_rnn_scores_are_recorded_not_hidden():
    for task in TASKS:
        h = model_info(task, "rnn").heldout
        # counting's baseline is 0: guessing from the current symbol never ends a string right
        assert isinstance(h.value, float) and math.isfinite(h.value) and h.baseline >= 0


def test_build_model_gives_the_zoo_architecture_with_random_weights():
    fresh = build_model("agreement", "gru", seed=0)
    trained = load_model("agreement", "gru")
    assert fresh.spec == trained.spec and not fresh.training
    assert not torch.equal(fresh.rnn.weight_hh_l0, trained.rnn.weight_hh_l0)
    assert torch.equal(build_model("agreement", "gru", seed=0).rnn.weight_hh_l0,
                       fresh.rnn.weight_hh_l0)
    assert build_model("adding", "lstm", hidden_size=8).rnn.hidden_size == 8


def test_unknown_names_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        load_model("adding", "transformer")
    with pytest.raises(ValueError, match="choose one of"):
        model_info("copying", "lstm")


def test_metadata_files_are_plain_json():
    for task, cell in ALL:
        meta = json.loads(paths(task, cell)[1].read_text())
        assert meta["made_by"] == "python scripts/train_zoo.py"
    assert MODELS_DIR.name == "models"


def test_user_weights_loader_is_re_exported_for_scripts():
    from core.zoo import load_model as zoo_load_model, load_user_weights

    assert load_user_weights is core.io.loading.load_user_weights
    assert zoo_load_model is load_model


# -- reproducible: the command makes the shipped weights (issue 19, item 10) ---------------------

#: What float results depend on besides the code: where any differs from the checkpoint's
#: record, a retrain may end at other weights and the bitwise check below says so and skips.
MACHINE = ("torch", "cpu", "cpu_capability", "cpu_flags_sha256")


@pytest.mark.parametrize("task, cell", ALL)
def test_every_checkpoint_records_what_a_bit_for_bit_retrain_needs(task, cell):
    info = model_info(task, cell)
    record = info.made_with
    assert record["command"] == "python scripts/train_zoo.py"
    assert record["threads"] == ZOO_THREADS == info.config["threads"] == recipe(task, cell).threads
    assert record["torch"] == json.loads(paths(task, cell)[1].read_text())["torch_version"]
    assert all(record[key] for key in MACHINE)
    assert sorted(record["code_sha256"]) == sorted(training_sources(task))


def test_the_code_hash_ignores_comments_and_docstrings_but_not_code(tmp_path):
    one, two, three = (tmp_path / f"{n}.py" for n in ("one", "two", "three"))
    one.write_text('"""Doc."""\nx = 1  # a comment\n\ndef f():\n    """Says what."""\n    return x\n')
    two.write_text('"""Other words."""\nx = 1\n\n\ndef f():\n    return x  # why\n')
    three.write_text('"""Doc."""\nx = 2\n\ndef f():\n    return x\n')
    assert source_hash(one) == source_hash(two) != source_hash(three)


def test_the_command_remakes_the_shipped_airline_models_bit_for_bit(tmp_path):
    """The cheapest task, all three cells (the RNN, oneDNN's LSTM, the GRU), through the
    command's own path: its worker processes, the recipe's one thread, save_model. Bitwise, on
    the same torch and CPU as recorded; a changed training code then fails here, not silently."""
    task = "airline"
    recorded = {cell: model_info(task, cell).made_with for cell in CELLS}
    here = made_with(task)
    for cell, record in recorded.items():
        differs = [f"{key} {record.get(key)!r} here {here[key]!r}" for key in MACHINE
                   if record.get(key) != here[key]]
        if differs:
            pytest.skip(f"{task} x {cell} was made elsewhere ({'; '.join(differs)}): float "
                        "results depend on the torch build and the CPU's instruction set")
    done = subprocess.run([sys.executable, "scripts/train_zoo.py", "--task", task,
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for cell, record in recorded.items():
        shipped = load_file(str(paths(task, cell)[0]))
        again = load_file(str(paths(task, cell, tmp_path)[0]))
        changed = [path for path, digest in here["code_sha256"].items()
                   if record["code_sha256"].get(path) != digest]
        assert list(again) == list(shipped) and all(
            torch.equal(again[k], shipped[k]) for k in shipped), (
            f"python scripts/train_zoo.py no longer makes the shipped {task} x {cell}; code "
            f"changed since it was made: {changed or 'none'}. Retrain the zoo and update the "
            "README's score table, or undo the change.")
        meta = json.loads(paths(task, cell, tmp_path)[1].read_text())
        assert meta["heldout"] == json.loads(paths(task, cell)[1].read_text())["heldout"]
