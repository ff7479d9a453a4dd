"""Sessions whose tab is gone for good are closed, and what they held goes back to the system.

Streamlit keeps a closed or reloaded tab's session for `server.disconnectedSessionTTL` seconds
(120 by default), so that the tab can reconnect to it. After that it only stops listing the
session: nothing shuts it down (streamlit/streamlit#12506), so its uploaded files and session
state stay in memory until a full garbage collection happens to find the session, which on a
quiet server may be never (the app turns Streamlit's collection after every run off, see
.streamlit/config.toml). One watcher thread per process closes each session of this app once
it has been disconnected for longer than that window, then collects and trims the heaps
(core/memory.py): memory goes back to where it was before the visitor came.

Closing goes through `Runtime.clear_user_info_for_session`, Streamlit's public way to end a
stored session from any thread (it marks the session as not to be resumed and closes it on
the server's event loop); this app has no logins, so the user information it clears is empty.
"""

from __future__ import annotations

import logging
import threading
import time

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.memory import give_back_free_memory, map_big_blocks

log = logging.getLogger(__name__)

#: How often the watcher looks at the sessions it knows.
CHECK_SECONDS = 5.0


class SessionJanitor:
    """Knows every session that ran this app; closes those gone past the reconnect window."""

    def __init__(self, is_active, close, reconnect_seconds: float,
                 clock=time.monotonic, tidy=give_back_free_memory):
        self._is_active, self._close, self._clock, self._tidy = is_active, close, clock, tidy
        self.reconnect_seconds = reconnect_seconds
        self._last_active: dict[str, float] = {}
        self._lock = threading.Lock()

    def note(self, session_id: str) -> None:
        """`session_id` is running the app now."""
        with self._lock:
            self._last_active[session_id] = self._clock()

    @property
    def known(self) -> int:
        with self._lock:
            return len(self._last_active)

    def sweep(self) -> list[str]:
        """Close every known session disconnected for longer than the reconnect window; the
        ids closed. A session that is active again counts from now."""
        now, closed = self._clock(), []
        with self._lock:
            for session_id, seen in list(self._last_active.items()):
                if self._is_active(session_id):
                    self._last_active[session_id] = now
                elif now - seen > self.reconnect_seconds:
                    del self._last_active[session_id]
                    closed.append(session_id)
        for session_id in closed:
            try:
                self._close(session_id)
            except Exception:  # noqa: BLE001 - the server may be shutting down
                log.exception("could not close session %s", session_id)
        if closed:
            self._tidy()
        return closed


@st.cache_resource(show_spinner=False)
def _janitor() -> SessionJanitor:
    """The process's one janitor and its watcher thread, made on the first run."""
    map_big_blocks()
    app = runtime.get_instance()
    janitor = SessionJanitor(app.is_active_session, app.clear_user_info_for_session,
                             float(st.get_option("server.disconnectedSessionTTL")))

    def watch() -> None:
        while True:
            time.sleep(CHECK_SECONDS)
            janitor.sweep()

    threading.Thread(target=watch, name="gatescope-session-janitor", daemon=True).start()
    return janitor


def close_sessions_when_gone() -> None:
    """Register the running session with the janitor (app.py calls this on every run)."""
    context = get_script_run_ctx()
    if context is not None and runtime.exists():
        _janitor().note(context.session_id)
