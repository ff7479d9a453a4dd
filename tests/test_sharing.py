"""core.sharing and what builds on it: torch threads per visitor, training slots shared by every
visitor of the process, and the bounds on what one session holds."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

import pytest
import torch

from polling import wait_until
from core.views import explore as ex
from core.limits import LIMITS, LimitError, check_trace_size
from core.model import ModelSpec, SequenceModel, count_parameters
from core.sharing import (
    MAX_TRAINED_PER_SESSION, OWNER_WATCH, TRAINING_SLOTS, OwnerWatch, TrainingSlots,
    cap_torch_threads, session_memory_bound,
)
from core.training.loop import TrainConfig
from core.training.session import TrainingSession, check_model_size, keep_newest, train_runs

SMALL = dict(hidden_size=8, batch_size=16, heldout_size=50, seq_len=10, progress_every=1,
             heldout_every=5)


def runs(cells=("gru",), steps=10, when=datetime(2026, 1, 1, 9, 0, 0), **extra):
    config = TrainConfig(max_steps=steps, **{**SMALL, **extra})
    return train_runs("adding", list(cells), config, when=when)


# -- torch threads ----------------------------------------------------------------------------

def test_a_visitors_thread_gets_the_capped_number_of_torch_threads():
    seen = {}

    def visitor():
        cap_torch_threads(1)
        seen["capped"] = torch.get_num_threads()

    before = torch.get_num_threads()
    thread = threading.Thread(target=visitor)
    thread.start()
    thread.join()
    try:
        assert seen["capped"] == 1
    finally:
        torch.set_num_threads(before)


# -- training slots ---------------------------------------------------------------------------

def test_slots_are_taken_and_given_back():
    slots = TrainingSlots(2)
    assert slots.acquire(lambda: False) and slots.acquire(lambda: False)
    assert slots.busy == 2
    assert not slots.acquire(lambda: True)  # all taken: a caller who gives up gets none
    slots.release()
    assert slots.busy == 1 and slots.acquire(lambda: False)
    slots.release()
    slots.release()
    with pytest.raises(RuntimeError):
        slots.release()
    with pytest.raises(ValueError):
        TrainingSlots(0)


def test_a_waiter_gets_the_slot_as_soon_as_it_is_freed():
    slots = TrainingSlots(1)
    assert slots.acquire(lambda: False)
    got = threading.Event()
    waiter = threading.Thread(target=lambda: slots.acquire(lambda: False) and got.set())
    waiter.start()
    assert wait_until(lambda: slots.waiting == 1)
    assert not got.is_set()
    slots.release()
    waiter.join(5)
    assert got.is_set() and slots.busy == 1 and slots.waiting == 0


def test_the_process_wide_slots_follow_the_documented_limit():
    assert TRAINING_SLOTS.slots == LIMITS.max_concurrent_training_runs


def test_a_run_waits_for_a_free_slot_then_trains():
    slots = TrainingSlots(1)
    first = TrainingSession(runs(("lstm",), steps=LIMITS.max_training_steps), slots).start()
    second = TrainingSession(runs(("gru",), when=datetime(2026, 1, 1, 9, 0, 1)), slots).start()
    try:
        assert wait_until(lambda: slots.waiting == 1)
        (waiting,) = second.snapshot()
        assert waiting.waiting and not waiting.done and not waiting.events
        assert waiting.status == "waiting for a free training slot"
        assert "at most" in waiting.progress_text and "train at once" in waiting.progress_text
    finally:
        first.stop()
    assert second.wait(timeout=60)
    (trained,) = second.snapshot()
    assert trained.status == "finished" and not trained.waiting and trained.result.steps == 10
    assert slots.busy == 0


def test_a_run_stopped_while_it_waits_never_trains_and_says_so():
    slots = TrainingSlots(1)
    assert slots.acquire(lambda: False)  # another visitor's run holds the only slot
    session = TrainingSession(runs(("rnn", "gru")), slots).start()
    assert wait_until(lambda: slots.waiting == 2)
    session.stop()
    assert session.wait(timeout=10) and session.done
    for p in session.snapshot():
        assert p.cancelled and p.done and p.result is None and p.error is None
        assert p.status == "stopped before it started"
    assert session.results() == {}
    slots.release()
    assert slots.busy == 0


def test_a_failing_run_gives_its_slot_back():
    slots = TrainingSlots(1)
    (run,) = runs(("gru",))
    wrong = SequenceModel(ModelSpec("gru", "regression", 3, 8, 1))  # 3 features, not 2
    session = TrainingSession([replace(run, model=wrong)], slots).start()
    assert session.wait(timeout=30)
    assert "features" in session.snapshot()[0].error
    assert slots.busy == 0


def test_a_run_with_a_bad_length_is_refused_before_it_takes_a_slot():
    slots = TrainingSlots(1)
    with pytest.raises(ValueError, match="length"):
        TrainingSession(runs(("gru",), seq_len=10**9), slots)
    assert slots.busy == 0


# -- bounded memory per session ---------------------------------------------------------------

def test_a_trace_too_big_is_refused_before_it_runs_naming_the_limit():
    assert check_trace_size(1, 1, LIMITS.max_seq_len, LIMITS.max_hidden_size) <= \
        LIMITS.max_trace_values
    with pytest.raises(LimitError, match=r"4 layer\(s\) × 2 direction\(s\) × 600 steps × 256 "
                                         r"units = 1,228,800 values.*at most 500 steps") as error:
        check_trace_size(4, 2, 600, 256)
    assert error.value.limit == "max_trace_values"


def test_explore_refuses_an_upload_and_input_too_big_to_trace_together():
    rnn = torch.nn.GRU(2, 256, num_layers=4, bidirectional=True)
    choice = ex.ModelChoice(rnn, None, "upload", "yours")
    view = ex.ExploreState(task="adding", source="upload", len=600)
    with pytest.raises(LimitError, match="Too much to trace"):
        ex.run(view, choice, ex.make_example(view))


def test_a_model_over_the_parameter_limit_cannot_be_trained():
    config = TrainConfig(hidden_size=LIMITS.max_hidden_size, num_layers=LIMITS.max_layers)
    with pytest.raises(LimitError, match=r"4-layer LSTM with 512 units has 7,\d{3},\d{3} "
                                         r"parameters; at most 5,000,000") as error:
        train_runs("adding", ["lstm"], config)
    assert error.value.limit == "max_params"
    assert check_model_size("adding", "gru", TrainConfig(hidden_size=64)) < 20_000


def test_a_session_keeps_a_bounded_number_and_size_of_trained_models():
    class Result:
        def __init__(self, params):
            self.model = torch.nn.Linear(params, 1, bias=False)

    trained = {f"m{i}": Result(10) for i in range(MAX_TRAINED_PER_SESSION + 3)}
    keep_newest(trained)
    assert list(trained) == [f"m{i}" for i in range(3, MAX_TRAINED_PER_SESSION + 3)]
    big = LIMITS.max_params
    trained.update({"big1": Result(big), "big2": Result(big), "big3": Result(big)})
    keep_newest(trained)
    assert list(trained) == ["big1", "big2", "big3"]  # the newest "all three" run always fits
    assert sum(count_parameters(r.model) for r in trained.values()) <= 3 * big


def test_the_per_session_bound_adds_up_from_the_limits():
    bound = session_memory_bound()
    assert bound["last trace (states, gates)"] == 6 * LIMITS.max_trace_values * 4
    assert bound["Compare: an upload in each of three columns"] == 3 * bound[
        "Explore: uploaded weights, the file beside them, the model read"]
    assert sum(bound.values()) < 324 * 2**20  # the README quotes it: 323 MiB


# -- work whose owner has gone ------------------------------------------------------------------

def test_the_owner_watch_stops_work_once_its_owner_has_been_gone_for_the_grace():
    watch = OwnerWatch(grace_seconds=15.0, poll_seconds=None)  # polled by hand, on a fake clock
    stopped, owner, running = [], {"alive": True}, {"now": True}
    watch.watch(lambda: owner["alive"], lambda: stopped.append(1), lambda: running["now"])
    watch.poll(100.0)
    owner["alive"] = False
    watch.poll(101.0)  # gone since 101
    watch.poll(115.5)
    assert not stopped and watch.watching == 1
    watch.poll(116.0)
    assert stopped == [1] and watch.watching == 0  # stopped once, then forgotten


def test_the_owner_watch_forgets_finished_work_and_survives_a_broken_owner(caplog):
    watch = OwnerWatch(grace_seconds=1.0, poll_seconds=None)
    stopped = []

    def broken():
        raise RuntimeError("the runtime is shutting down")

    watch.watch(broken, lambda: stopped.append("broken"), lambda: True)
    watch.watch(lambda: False, lambda: stopped.append("gone"), lambda: False)  # already done
    with caplog.at_level("ERROR", logger="core.sharing"):
        watch.poll(0.0)
        watch.poll(5.0)
    assert stopped == [] and watch.watching == 1  # cannot tell: never stopped by mistake
    assert "could not tell whether an owner is still there" in caplog.text


def test_the_process_has_one_owner_watch_with_a_short_grace():
    assert 5 <= OWNER_WATCH.grace_seconds <= 30


def test_the_owner_watch_polls_from_one_thread_of_its_own():
    watch = OwnerWatch(grace_seconds=0.2, poll_seconds=0.02)
    stopped, running = threading.Event(), {"now": True}
    watch.watch(lambda: False, stopped.set, lambda: running["now"])
    watch.watch(lambda: True, lambda: None, lambda: running["now"])
    assert stopped.wait(5)  # gone for the grace: stopped by the watch's own thread
    running["now"] = False
    assert wait_until(lambda: watch.watching == 0, timeout=5)
    assert sum(t.name == "gatescope-owner-watch" for t in threading.enumerate()) >= 1
