"""Starting the app and the browser, shared by the e2e tests and benchmarks/ui_speed.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, log_path: Path, timeout: float = 60,
              options: dict[str, object] | None = None,
              env: dict[str, str] | None = None, root: Path = ROOT) -> subprocess.Popen:
    """Start `streamlit run app.py` headless on `port`; return once /_stcore/health answers.
    `options` are more of Streamlit's settings, e.g. {"server.disconnectedSessionTTL": 3};
    `env`, more environment variables for the server; `root`, the checkout to run (another
    commit's, for benchmarks/ui_pair.py)."""
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py",
         "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none",
         *(f"--{name}={value}" for name, value in (options or {}).items())],
        cwd=root, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"streamlit did not become healthy:\n{log_path.read_text()}")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class ScriptRuns:
    """The app's script runs, as one page's websocket frames tell them.

    The page shows no sign of a run it has asked for until the server starts it, which a busy
    machine can delay past any fixed wait. Its frames tell: a `rerun_script` request goes out,
    and the run answers with `new_session` as it starts and `script_finished` as it ends.
    Events are numbered in the order they came, across every websocket the page opens."""

    def __init__(self) -> None:
        self.events = 0
        self.last_request = self.last_start = self.last_finish = 0

    def track(self, websocket) -> None:
        websocket.on("framesent", self._sent)
        websocket.on("framereceived", self._received)

    @property
    def settled(self) -> bool:
        """Every run asked for has started, and the last to start has finished."""
        return self.last_request < self.last_start < self.last_finish

    def _sent(self, payload) -> None:
        if isinstance(payload, bytes) and \
                BackMsg.FromString(payload).WhichOneof("type") == "rerun_script":
            self.last_request = self._next()

    def _received(self, payload) -> None:
        if not isinstance(payload, bytes):
            return
        message = ForwardMsg.FromString(payload)
        kind = message.WhichOneof("type")
        if kind == "new_session":
            self.last_start = self._next()
        elif kind == "script_finished" and \
                message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            # a run stopped early for another (st.rerun, a new request) is not the end: the
            # next run's start may come a moment after (a CSV test read the page between them)
            self.last_finish = self._next()

    def _next(self) -> int:
        self.events += 1
        return self.events


def track_script_runs(page) -> None:
    """Count `page`'s script runs from now on, for `wait_for_app` (before it opens the app)."""
    page.script_runs = ScriptRuns()
    page.on("websocket", page.script_runs.track)


class TrackingBrowser:
    """A Playwright browser whose every page counts its script runs (`track_script_runs`)."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def __getattr__(self, name: str):
        return getattr(self._browser, name)

    def new_page(self, **options):
        page = self._browser.new_page(**options)
        track_script_runs(page)
        return page

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        context.on("page", track_script_runs)
        return context


def wait_for_app(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the script, then assert no exception is shown.
    A page that counts its script runs (`track_script_runs`) waits for every run it asked for;
    one that does not, for the status widget's "Running" to go."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    # A widget sends its change within its own event handler; give a debounced one a moment.
    page.wait_for_timeout(300)
    runs = getattr(page, "script_runs", None)
    deadline = time.monotonic() + timeout_ms / 1000
    while runs is not None and not runs.settled:
        if time.monotonic() > deadline:
            raise AssertionError(f"the app's script runs did not settle within {timeout_ms} ms "
                                 f"(last request, start, finish: event {runs.last_request}, "
                                 f"{runs.last_start}, {runs.last_finish})")
        page.wait_for_timeout(50)  # Playwright hands over the frames while it waits
    page.wait_for_function(
        """() => {
            const s = document.querySelector('[data-testid="stStatusWidget"]');
            return !s || !/Running/i.test(s.innerText);
        }""",
        timeout=timeout_ms,
    )
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()


def shot(page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(page, condition: str, what: str, arg=None, timeout_ms: int = 10_000) -> None:
    """Wait until the JavaScript function `condition` (called with `arg`) returns true; fail
    saying `what` did not happen. Browser-side animation runs on animation frames, which a
    busy 2-core CI machine delays: tests wait for an outcome, never a fixed time."""
    try:
        page.wait_for_function(condition, arg=arg, timeout=timeout_ms, polling=50)
    except Exception as error:  # Playwright's TimeoutError
        raise AssertionError(f"{what} (not within {timeout_ms} ms)") from error


def choose_option(page, selectbox, option, tries: int = 3) -> None:
    """Pick `option` (a name or a compiled pattern) in the Streamlit selectbox `selectbox` (a
    locator). A click that lands while the page is still redrawing the widget opens no list
    (it happened once in a CI run), so the list is opened again, up to `tries` times."""
    wanted = page.get_by_role("option", name=option, exact=isinstance(option, str))
    for attempt in range(tries):
        selectbox.click()
        try:
            wanted.wait_for(state="visible", timeout=5_000)
            break
        except Exception:  # Playwright's TimeoutError: no list, or not yet
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            wait_for_app(page)
    wanted.click()


# -- the server's processes, read from /proc -----------------------------------------------

def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and every live descendant: the server, its fork server and training processes."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                pass  # it ended while we looked
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of the process tree so far: each live process's own, plus that of the children
    it has reaped (training processes that have ended)."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = _stat(member)
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def tree_memory_bytes(pid: int) -> int:
    """Proportional set size (PSS) of the process tree: pages shared by the fork server and
    its training processes count once in all, not once per process."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


# -- big files, as a hostile visitor uploads them -------------------------------------------

def big_csv() -> bytes:
    """About 19 MB of CSV that Explore accepts: a month, a column of numbers and a notes column
    of 9,900 characters a row, 2,001 rows (the most a series may have). Only the numbers are
    kept; the file and its notes must not stay in memory."""
    note = ("passengers counted at the gate and " * 320)[:9_900]
    rows = (f"{1949 + i // 12}-{i % 12 + 1:02d},{100 + i % 500},{note}\n" for i in range(2_001))
    return ("month,passengers,notes\n" + "".join(rows)).encode()


def big_checkpoint() -> bytes:
    """About 12 MB: the state_dict of a 2-layer LSTM with 512 units, 3.2 M parameters (under
    the 5 M limit), as safetensors."""
    import torch
    from safetensors.torch import save

    generator = torch.Generator().manual_seed(0)
    lstm = torch.nn.LSTM(2, 512, num_layers=2)
    return save({name: torch.rand(p.shape, generator=generator) - 0.5
                 for name, p in lstm.state_dict().items()})
