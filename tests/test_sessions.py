"""ui/sessions.py: a session whose tab is gone past the reconnect window is closed once, and
what it held is given back; one that comes back in time is not touched (issue 19, item 2)."""

from __future__ import annotations

from core.memory import give_back_free_memory, map_big_blocks
from ui.sessions import SessionJanitor


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def janitor(active: set[str], closed: list[str], tidied: list[int], clock: Clock):
    return SessionJanitor(active.__contains__, closed.append, reconnect_seconds=120, clock=clock,
                          tidy=lambda: tidied.append(1))


def test_a_session_gone_past_the_window_is_closed_once_and_memory_given_back():
    active, closed, tidied, clock = {"a", "b"}, [], [], Clock()
    j = janitor(active, closed, tidied, clock)
    j.note("a"), j.note("b")
    active.discard("a")  # a's tab closed
    clock.now = 119
    assert j.sweep() == [] and closed == [] and tidied == []  # it may still reconnect
    clock.now = 121
    assert j.sweep() == ["a"] and closed == ["a"] and tidied == [1]
    clock.now = 500
    assert j.sweep() == [] and closed == ["a"] and j.known == 1  # b is connected: kept


def test_a_session_that_reconnects_within_the_window_is_kept():
    active, closed, tidied, clock = {"a"}, [], [], Clock()
    j = janitor(active, closed, tidied, clock)
    j.note("a")
    active.discard("a")
    clock.now = 100
    j.sweep()
    active.add("a")  # the reloaded tab reconnected to its session
    clock.now = 110
    j.sweep()
    active.discard("a")  # and closes again: the window starts over from its last sight
    clock.now = 200
    assert j.sweep() == [] and closed == []
    clock.now = 231
    assert j.sweep() == ["a"]


def test_a_failing_close_is_logged_and_the_rest_still_close(caplog):
    closed, clock = [], Clock()

    def close(session_id):
        if session_id == "bad":
            raise RuntimeError("event loop closed")
        closed.append(session_id)

    j = SessionJanitor(lambda _: False, close, reconnect_seconds=1, clock=clock, tidy=lambda: None)
    j.note("bad"), j.note("good")
    clock.now = 2
    assert sorted(j.sweep()) == ["bad", "good"] and closed == ["good"]
    assert "could not close session bad" in caplog.text


def test_the_memory_calls_run_here():
    assert map_big_blocks() in (True, False)  # True on glibc
    give_back_free_memory()
