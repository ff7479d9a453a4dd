"""core.training.session: background runs a page can poll and stop, checked user choices, labels
and the files a trained model downloads as."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import threading
import time
from datetime import datetime

import pytest
import safetensors.torch
import torch

from polling import wait_until
from core.io.exports import model_files
from core.io.loading import load_user_weights
from core.limits import LIMITS, LimitError
from core.model import ModelSpec, SequenceModel
from core.sharing import OwnerWatch, TrainingSlots
from core.tasks import Score, get_task
from core.training.loop import TrainConfig, heldout_set
from core.training.session import (
    STOP_GRACE_SECONDS,
    RunSpec,
    TrainingSession,
    describe_result,
    event_spacing,
    make_train_config,
    run_label,
    train_runs,
)

SMALL = dict(hidden_size=8, batch_size=16, heldout_size=50, seq_len=10, progress_every=1,
             heldout_every=5)


def small_runs(cells=("rnn", "lstm", "gru"), steps=20, **extra):
    config = TrainConfig(max_steps=steps, **{**SMALL, **extra})
    return train_runs("adding", list(cells), config, when=datetime(2026, 1, 1, 14, 3, 21))


def test_three_cells_train_side_by_side_and_report_every_step():
    session = TrainingSession(small_runs()).start()
    assert session.wait(timeout=60) and session.done and not session.running
    snapshot = session.snapshot()
    assert [p.label for p in snapshot] == ["adding · RNN · 14:03:21", "adding · LSTM · 14:03:21",
                                           "adding · GRU · 14:03:21"]
    for p in snapshot:
        assert p.status == "finished" and p.error is None
        assert [e.step for e in p.events] == list(range(1, 21))  # one event per step
        assert all(e.grad_norm is not None and e.grad_norm > 0 for e in p.events)
        assert p.steps_per_second > 0
    results = session.results()
    assert set(results) == {p.label for p in snapshot}
    assert {r.cell for r in results.values()} == {"rnn", "lstm", "gru"}


def test_progress_is_visible_while_the_run_goes_on():
    session = TrainingSession(small_runs(("lstm",), steps=LIMITS.max_training_steps)).start()
    try:
        deadline = time.monotonic() + 30
        while not session.snapshot()[0].events and time.monotonic() < deadline:
            time.sleep(0.05)
        partial = session.snapshot()[0]
        assert partial.events and partial.status == "running" and not partial.done
        assert session.running
    finally:
        session.stop()
        session.wait(timeout=30)


def test_a_stop_request_ends_the_run_early_and_keeps_what_it_learned():
    runs = small_runs(("gru",), steps=LIMITS.max_training_steps)
    initial = {k: v.clone() for k, v in
               SequenceModel(ModelSpec("gru", "regression", 2, 8, 1)).state_dict().items()}
    session = TrainingSession(runs).start()
    while len(session.snapshot()[0].events) < 30:
        time.sleep(0.02)
    session.stop()
    assert session.stop_requested
    assert session.wait(timeout=30)
    result = session.results()[runs[0].label]
    assert result.status == "stopped"
    assert 30 <= result.steps < LIMITS.max_training_steps
    trained = result.model.state_dict()
    assert any(not torch.equal(trained[k], initial[k]) for k in initial)  # it learned something
    assert all(torch.isfinite(v).all() for v in trained.values())


def test_a_failing_run_is_reported_in_words_and_the_others_finish():
    bad = RunSpec("bad", "adding", "rnn", TrainConfig(max_steps=5, **SMALL),
                  model=SequenceModel(ModelSpec("rnn", "regression", 3, 8, 1)))  # 3 features
    good = small_runs(("rnn",), steps=5)[0]
    session = TrainingSession([bad, good]).start()
    assert session.wait(timeout=30)
    by_label = {p.label: p for p in session.snapshot()}
    assert by_label["bad"].status == "failed" and "features" in by_label["bad"].error
    assert by_label[good.label].status == "finished"
    assert list(session.results()) == [good.label]


def test_training_threads_leave_the_callers_torch_threads_alone():
    before = torch.get_num_threads()
    TrainingSession(small_runs(("rnn",), steps=3)).start().wait(timeout=30)
    assert torch.get_num_threads() == before


def test_a_session_needs_unique_labels_and_starts_once():
    run = small_runs(("rnn",))[0]
    with pytest.raises(ValueError):
        TrainingSession([])
    with pytest.raises(ValueError):
        TrainingSession([run, run])
    session = TrainingSession([run]).start()
    with pytest.raises(RuntimeError):
        session.start()
    session.wait(timeout=30)


# -- a user's choices --------------------------------------------------------------------------

def test_make_train_config_passes_every_choice_through():
    config = make_train_config(
        "adding", steps=500, seconds=30, hidden_size=16, num_layers=2, optimizer="rmsprop",
        learning_rate=0.01, seq_len=30, init="orthogonal", forget_bias=1.0, update_bias=-1.0,
        clip_norm=None, seed=7)
    assert (config.max_steps, config.max_seconds, config.hidden_size, config.num_layers) == (
        500, 30.0, 16, 2)
    assert (config.optimizer, config.learning_rate, config.seq_len, config.init) == (
        "rmsprop", 0.01, 30, "orthogonal")
    assert (config.forget_bias, config.update_bias, config.clip_norm, config.seed) == (
        1.0, -1.0, None, 7)
    assert config.progress_every == 1  # every step's loss: the spread needs single steps


@pytest.mark.parametrize("change, limit", [
    (dict(steps=0), "Training steps"), (dict(steps=LIMITS.max_training_steps + 1), "Training steps"),
    (dict(steps=2.5), "Training steps"), (dict(seconds=0), "Training time"),
    (dict(seconds=float("nan")), "Training time"), (dict(seconds=10_000), "Training time"),
    (dict(hidden_size=LIMITS.max_hidden_size + 1), "Hidden size"),
    (dict(num_layers=LIMITS.max_layers + 1), "Number of layers"),
    (dict(num_layers=True), "Number of layers"), (dict(seq_len=10**6), "Sequence length"),
])
def test_make_train_config_refuses_values_over_the_limits(change, limit):
    values = dict(steps=100, seconds=10) | change
    with pytest.raises(LimitError, match=limit):
        make_train_config("adding", **values)


@pytest.mark.parametrize("change, words", [
    (dict(optimizer="lbfgs"), "optimizer"), (dict(learning_rate=-1), "learning rate"),
    (dict(learning_rate=float("inf")), "learning rate"), (dict(init="zeros"), "initialiser"),
    (dict(forget_bias=float("nan")), "forget-gate bias"), (dict(update_bias=99), "update-gate"),
    (dict(clip_norm=0), "clipping threshold"), (dict(seed=-1), "seed"),
    (dict(seq_len=1), "length"),  # within the app's limit, outside the adding problem's range
])
def test_make_train_config_explains_bad_values(change, words):
    with pytest.raises(ValueError, match=words):
        make_train_config("adding", steps=100, seconds=10, **change)


def test_long_runs_thin_their_events_to_a_bounded_number():
    assert event_spacing(300) == {"progress_every": 1, "heldout_every": 10}
    spacing = event_spacing(LIMITS.max_training_steps)
    assert LIMITS.max_training_steps / spacing["progress_every"] <= 2000


def test_train_runs_give_each_gate_bias_only_to_its_cell():
    config = TrainConfig(forget_bias=1.0, update_bias=2.0)
    runs = {r.cell: r for r in train_runs("adding", ["rnn", "lstm", "gru"], config)}
    assert (runs["lstm"].config.forget_bias, runs["lstm"].config.update_bias) == (1.0, None)
    assert (runs["gru"].config.forget_bias, runs["gru"].config.update_bias) == (None, 2.0)
    assert (runs["rnn"].config.forget_bias, runs["rnn"].config.update_bias) == (None, None)
    assert len({r.config.seed for r in runs.values()}) == 1  # the same data
    with pytest.raises(ValueError, match="at least one cell"):
        train_runs("adding", [], config)


def test_labels_are_readable_and_never_collide():
    when = datetime(2026, 1, 1, 9, 5, 7)
    assert run_label("adding", "lstm", when) == "adding · LSTM · 09:05:07"
    taken = {"adding · LSTM · 09:05:07", "adding · LSTM · 09:05:07 (2)"}
    assert run_label("adding", "lstm", when, taken) == "adding · LSTM · 09:05:07 (3)"


def test_a_run_reads_learned_only_past_the_one_margin_every_page_uses():
    mse = dict(metric="MSE", baseline=0.17, baseline_name="always 1", higher_is_better=False,
               loss=0.0, n=10)
    assert not Score(value=0.1696, **mse).beats_baseline  # noise, not learning
    assert Score(value=0.05, **mse).beats_baseline
    assert Score(value=math.inf, **mse).verdict == "worse"
    acc = dict(mse, metric="accuracy", baseline=0.5, higher_is_better=True)
    # the case: 0.53 against 0.50 once read "Learned" on Train, "about the same" on Compare
    assert Score(value=0.53, **acc).verdict == "about the same"
    assert Score(value=0.9, **acc).beats_baseline


# -- downloads ---------------------------------------------------------------------------------

def test_model_files_round_trip_and_open_in_the_upload_loader():
    session = TrainingSession(small_runs(("lstm",), steps=5, forget_bias=1.0)).start()
    session.wait(timeout=30)
    result = next(iter(session.results().values()))
    weights, meta_text = model_files(result)
    meta = json.loads(meta_text)
    assert (meta["task"], meta["cell"], meta["steps"], meta["status"]) == ("adding", "lstm", 5,
                                                                            "finished")
    assert meta["config"]["forget_bias"] == 1.0 and meta["spec"]["hidden_size"] == 8
    rebuilt = SequenceModel(ModelSpec(**meta["spec"]))
    rebuilt.load_state_dict(safetensors.torch.load(weights))
    x = torch.rand(2, 10, 2)
    torch.testing.assert_close(rebuilt(x), result.model(x))
    loaded = load_user_weights(weights, "adding_lstm.safetensors")  # the Explore page's upload
    assert isinstance(loaded, torch.nn.LSTM) and loaded.hidden_size == 8
    torch.testing.assert_close(loaded.weight_hh_l0, result.model.rnn.weight_hh_l0)


def test_a_diverged_models_infinite_score_is_written_as_null():
    session = TrainingSession(small_runs(("rnn",), steps=2)).start()
    session.wait(timeout=30)
    result = next(iter(session.results().values()))
    result.score.value = math.inf
    meta = json.loads(model_files(result)[1])
    assert meta["heldout"]["value"] is None


def test_describe_result_names_the_outcome():
    session = TrainingSession(small_runs(("rnn",), steps=2)).start()
    session.wait(timeout=30)
    result = next(iter(session.results().values()))
    kind, sentence = describe_result(result)
    assert kind in ("warning", "success") and "baseline" in sentence
    result.status, result.message = "diverged", "the loss became nan at step 3"
    assert describe_result(result)[0] == "error"


def training_processes() -> list:
    return [p for p in multiprocessing.active_children()
            if p.name.startswith("gatescope-train adding")]


def test_each_run_trains_in_a_daemon_process_that_ends_with_it():
    session = TrainingSession(small_runs(("rnn",), steps=LIMITS.max_training_steps)).start()
    threads = [t for t in threading.enumerate() if t.name.startswith("gatescope-train adding")]
    deadline = time.monotonic() + 30
    while not session.snapshot()[0].events and time.monotonic() < deadline:
        time.sleep(0.05)
    children = training_processes()
    assert len(children) == 1 and children[0].daemon  # a closing server never waits for it
    session.stop()
    assert session.wait(timeout=30)
    assert threads and all(t.daemon for t in threads)
    assert not training_processes()


def test_a_training_process_that_dies_is_reported_and_frees_its_slot():
    from core.sharing import TrainingSlots

    slots = TrainingSlots(1)
    session = TrainingSession(small_runs(("gru",), steps=LIMITS.max_training_steps), slots).start()
    deadline = time.monotonic() + 30
    while not session.snapshot()[0].events and time.monotonic() < deadline:
        time.sleep(0.05)
    (child,) = training_processes()
    child.kill()  # e.g. the operating system ran out of memory
    assert session.wait(timeout=30)
    (run,) = session.snapshot()
    assert run.status == "failed" and "ended unexpectedly" in run.error
    assert slots.busy == 0


def test_progress_line_counts_the_further_of_steps_and_seconds():
    from core.training.loop import ProgressEvent, TrainConfig
    from core.training.session import RunProgress

    event = ProgressEvent(step=50, total_steps=200, loss=0.25, metric=None, heldout_loss=None,
                          heldout_metric=None, elapsed=9.0, metric_name="MSE")
    run = RunProgress("adding · LSTM · 10:00:00", "adding", "lstm",
                      TrainConfig(max_steps=200, max_seconds=10.0), [event], None, None)
    assert run.fraction == 0.9  # 9 of 10 seconds is further than 50 of 200 steps
    assert "running · step 50 of 200" in run.progress_text and "loss 0.25" in run.progress_text


def test_a_training_process_started_by_the_app_does_not_run_the_app_again(tmp_path):
    # Streamlit makes app.py the __main__ module of the server; multiprocessing's forkserver
    # then runs that file again in every training process, as __mp_main__. app.py must do
    # nothing then (it used to run the whole app there, bare, before training).
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script = tmp_path / "as_streamlit_does.py"
    script.write_text(f"""
import sys, types
sys.path.insert(0, {str(root)!r})
main = types.ModuleType("__main__")
main.__file__ = {str(root / "app.py")!r}
sys.modules["__main__"] = main  # what Streamlit's script runner does
from datetime import datetime
from core.training.loop import TrainConfig
from core.training.session import TrainingSession, train_runs
config = TrainConfig(max_steps=3, hidden_size=8, batch_size=8, heldout_size=20, seq_len=5)
session = TrainingSession(train_runs("adding", ["gru"], config, when=datetime(2026, 1, 1))).start()
assert session.wait(timeout=120)
print(session.snapshot()[0].status)
print("streamlit imported in the server:", "streamlit" in sys.modules)
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "finished"
    assert "ScriptRunContext" not in done.stderr and "streamlit run" not in done.stderr
    assert "Traceback" not in done.stderr


# -- the memory budget, Stop within a step, a child that does not answer ------------------------

def test_runs_started_together_share_their_planned_batch_and_held_out_set():
    config = TrainConfig(max_steps=5, hidden_size=512, num_layers=2, seq_len=1000)
    session = TrainingSession(train_runs("adding", ["rnn", "lstm", "gru"], config,
                                         when=datetime(2026, 1, 1)))
    sizes = {(run.config.batch_size, run.config.heldout_size) for run in session.runs}
    assert sizes == {(1, 20)}  # the LSTM's plan, for all three: the same batches
    assert session.notes[0].startswith("Batch scaled from 50 to 1 sequence to fit the memory "
                                       "budget of 192 MB per training run")
    assert session.notes[-1] == ("Runs started together train on the same batches and share "
                                 "one held-out set, so every run here uses these sizes.")
    assert len(session.notes) == 3  # the LSTM's two notes, and that one
    rnn = session.snapshot()[0]
    assert rnn.notes[0] == ("Batch scaled from 50 to 1 sequence, as for the runs started with "
                            "it: runs started together train on the same batches.")


def test_a_run_too_big_for_the_budget_is_refused_before_it_takes_a_slot(monkeypatch):
    from core.limits import Limits
    import core.training.budget

    monkeypatch.setattr(core.training.budget, "LIMITS", Limits(max_training_bytes=2**20))
    slots = TrainingSlots(1)
    with pytest.raises(LimitError, match="Too big to train here") as raised:
        TrainingSession(small_runs(("lstm",), hidden_size=64, seq_len=500), slots)
    assert raised.value.limit == "max_training_bytes" and slots.busy == 0


def test_stop_ends_a_run_with_slow_steps_within_a_second_or_so():
    """Steps of about half a second (1,000 steps, H = 128, 27 sequences a batch), heard in
    stretches: Stop ends the run, evaluated, soon after it is asked, without ending its process."""
    config = TrainConfig(max_steps=LIMITS.max_training_steps, hidden_size=128, seq_len=1000,
                         heldout_every=1000, progress_every=1)
    session = TrainingSession(train_runs("adding", ["lstm"], config,
                                         when=datetime(2026, 1, 1))).start()
    assert wait_until(lambda: session.snapshot()[0].events)
    asked = time.monotonic()
    session.stop()
    assert session.wait(timeout=30)
    took = time.monotonic() - asked
    (run,) = session.snapshot()
    assert run.result.status == "stopped" and "was ended" not in run.result.message
    assert run.result.steps >= 1
    assert took < 2.5, took  # a stretch (~0.25 s planned), the evaluation, the hand-over


def _frozen_after_a_check(session) -> int:
    """Wait for the first held-out check of the session's only run, then freeze its process
    (SIGSTOP: like a step that never ends) and return its pid."""
    assert wait_until(lambda: any(e.heldout_metric is not None
                                for e in session.snapshot()[0].events))
    (child,) = training_processes()
    os.kill(child.pid, signal.SIGSTOP)
    return child.pid


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_a_process_that_does_not_answer_stop_is_ended_and_its_last_check_kept():
    runs = small_runs(("gru",), steps=LIMITS.max_training_steps, heldout_every=5)
    session = TrainingSession(runs).start()
    _frozen_after_a_check(session)
    asked = time.monotonic()
    session.stop()
    assert session.wait(timeout=30)
    took = time.monotonic() - asked
    assert STOP_GRACE_SECONDS <= took < STOP_GRACE_SECONDS + 1.5, took
    (run,) = session.snapshot()
    result = run.result
    assert result.status == "stopped" and result.steps % 5 == 0  # a check's step
    assert "the training process did not end within 1.5 s, so it was ended and the weights " \
           f"of step {result.steps} (the last held-out check) and their score were kept" \
           in result.message
    # the score is that of the kept weights: evaluate them again on the run's held-out set
    again = get_task("adding").score_on(result.model, heldout_set("adding", runs[0].config))
    assert again.value == pytest.approx(result.score.value, rel=1e-5)
    assert not training_processes()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_a_process_past_its_time_limit_is_ended_within_the_grace():
    runs = small_runs(("rnn",), steps=LIMITS.max_training_steps, heldout_every=5,
                      max_seconds=2.0)
    session = TrainingSession(runs).start()
    _frozen_after_a_check(session)
    assert session.wait(timeout=30)
    (run,) = session.snapshot()
    assert run.result.status == "time limit" and "was ended" in run.result.message
    assert run.result.seconds < 2.0 + STOP_GRACE_SECONDS + 1.0


def test_a_process_ended_before_its_first_check_keeps_nothing_and_says_so():
    runs = small_runs(("rnn",), steps=LIMITS.max_training_steps, heldout_every=10**6)
    session = TrainingSession(runs).start()
    assert wait_until(lambda: session.snapshot()[0].events)
    (child,) = training_processes()
    os.kill(child.pid, signal.SIGSTOP)
    session.stop()
    assert session.wait(timeout=30)
    (run,) = session.snapshot()
    assert run.status == "failed" and run.error.endswith(
        "before its first held-out check: nothing was kept")
    assert "did not end within 1.5 s of Stop and was ended at step " in run.error


# -- runs whose browser tab has gone -------------------------------------------------------------

def test_an_abandoned_session_is_stopped_after_the_grace_and_frees_its_slots():
    slots = TrainingSlots(2)
    watch = OwnerWatch(grace_seconds=0.5, poll_seconds=0.05)
    owner = {"alive": True}
    runs = small_runs(("rnn", "lstm", "gru"), steps=LIMITS.max_training_steps)
    session = TrainingSession(runs, slots, owner_alive=lambda: owner["alive"],
                              owner_watch=watch).start()
    assert wait_until(lambda: slots.busy == 2 and slots.waiting == 1)
    time.sleep(0.3)
    assert session.running and not session.stop_requested  # its tab is there: it trains on
    owner["alive"] = False  # the tab is closed
    assert session.wait(timeout=30)
    assert slots.busy == 0 and slots.waiting == 0 and session.abandoned
    by_status = sorted(p.status for p in session.snapshot())
    assert by_status == ["stopped", "stopped", "stopped before it started"]
    for result in session.results().values():
        assert result.message.startswith("stopped because its browser tab had gone for 0.5 s "
                                         "after ")
    assert watch.watching == 0


def test_a_tab_that_comes_back_within_the_grace_finds_its_runs_going():
    watch = OwnerWatch(grace_seconds=10.0, poll_seconds=None)  # polled by hand, on a fake clock
    alive = {"now": False}
    session = TrainingSession(small_runs(("rnn",), steps=LIMITS.max_training_steps),
                              owner_alive=lambda: alive["now"], owner_watch=watch).start()
    try:
        now = time.monotonic()
        watch.poll(now)
        watch.poll(now + 9.0)  # gone for 9 s: not yet
        alive["now"] = True  # reconnected
        watch.poll(now + 9.5)
        alive["now"] = False  # gone again: the grace starts afresh
        watch.poll(now + 12.0)
        watch.poll(now + 21.0)
        assert session.running and not session.stop_requested
        watch.poll(now + 22.5)
        assert session.stop_requested and session.abandoned
    finally:
        session.stop()
        session.wait(timeout=30)


def test_a_result_sent_just_before_the_process_ends_is_read_not_lost():
    """The process sent its result and exited while the server's wait ran out: the result is
    in the pipe, and is read, not taken for a process that ended unexpectedly."""
    from core.training.session import next_message

    class Pipe:
        def __init__(self):
            self.polls = iter([False, True])  # nothing yet; then, looked at again, the result

        def poll(self, timeout):
            return next(self.polls)

        def recv(self):
            return ("result", "payload")

    class Ended:
        def is_alive(self):
            return False

    class Alive:
        def is_alive(self):
            return True

    assert next_message(Pipe(), Ended()) == ("result", "payload")
    assert next_message(type("Quiet", (), {"poll": lambda self, t: False})(), Alive()) is None
    with pytest.raises(EOFError):
        next_message(type("Quiet", (), {"poll": lambda self, t: False})(), Ended())
