"""A real PostgreSQL server for the tests: the session fixture `postgres_url`.

    from postgres import postgres_url  # noqa: F401  (pytest finds the fixture by its name)

It runs Debian's PostgreSQL (initdb, then pg_ctl) in a temporary folder, listening on a free
localhost port with trust authentication, creates the database `gatescope`, yields
`postgresql://postgres@127.0.0.1:PORT/gatescope`, and stops the server (immediate shutdown)
when the session ends. `create_database` adds another, empty database to that server. initdb
refuses to run as root, and the tests run as root here and in CI, so as root the server runs as
the `postgres` user that Debian's package creates. Databases are made with the server's own
createdb: these helpers need no particular Python driver.

With no PostgreSQL installed the fixture fails rather than skips: a search shared by many
machines through PostgreSQL is a feature we ship, and scripts/test.sh installs the package.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

DATABASE = "gatescope"
SUPERUSER = "postgres"
#: The system user that runs the server when the tests run as root.
SERVER_USER = "postgres"
DEBIAN_SERVERS = Path("/usr/lib/postgresql")  # /usr/lib/postgresql/<version>/bin
PROGRAMS = ("initdb", "pg_ctl", "createdb")
COMMAND_SECONDS = 120


def server_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and createdb: initdb's on PATH (links followed), else
    the newest of Debian's /usr/lib/postgresql/<version>/bin; None if there is none."""
    folders = []
    on_path = shutil.which("initdb")
    if on_path:
        folders += [Path(on_path).resolve().parent, Path(on_path).parent]
    folders += sorted(DEBIAN_SERVERS.glob("*/bin"), key=_version, reverse=True)
    for folder in folders:
        if all((folder / program).is_file() for program in PROGRAMS):
            return folder
    return None


def _version(bin_folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in bin_folder.parent.name.split(".") if part.isdigit())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_database(url: str, name: str) -> str:
    """Make the empty database `name` on the server of `url` (the fixture's); its URL."""
    server = urlsplit(url)
    _run([str(_binaries() / "createdb"), "--host", server.hostname, "--port", str(server.port),
          "--username", server.username, name], None, Path(tempfile.gettempdir()), "createdb")
    return server._replace(path=f"/{name}").geturl()


@pytest.fixture(scope="session")
def postgres_url():
    binaries = _binaries()
    user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="gatescope-postgres-"))
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    data, log = folder / "data", folder / "server.log"
    port = free_port()
    started = False
    try:
        _run([str(binaries / "initdb"), "--pgdata", str(data), "--username", SUPERUSER,
              "--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync"],
             user, folder, "initdb")
        # Durability is not under test: fsync off keeps a 2-core CI machine's disk out of it.
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off")
        # -w: pg_ctl returns once the server accepts connections.
        _run([str(binaries / "pg_ctl"), "--pgdata", str(data), "--log", str(log), "-w",
              "-t", str(COMMAND_SECONDS), "-o", options, "start"], user, folder, "start", log)
        started = True
        yield create_database(f"postgresql://{SUPERUSER}@127.0.0.1:{port}/", DATABASE)
    finally:
        if started:
            stop = [str(binaries / "pg_ctl"), "--pgdata", str(data), "-m", "immediate", "-w",
                    "stop"]
            subprocess.run(_as(user, stop), cwd=folder, capture_output=True,
                           timeout=COMMAND_SECONDS, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _binaries() -> Path:
    binaries = server_binaries()
    if binaries is None:
        pytest.fail(f"No PostgreSQL server found: {', '.join(PROGRAMS)} are neither on PATH "
                    f"nor in {DEBIAN_SERVERS}/<version>/bin. Install Debian's postgresql "
                    f"package (apt-get install -y postgresql; scripts/test.sh does).",
                    pytrace=False)
    return binaries


def _server_user() -> pwd.struct_passwd | None:
    """The user to run the server as: None to run it as ourselves (we are not root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.fail(f"The tests run as root, and PostgreSQL refuses to: it needs a "
                    f"“{SERVER_USER}” user to run as, which Debian's postgresql package "
                    f"creates (apt-get install -y postgresql).", pytrace=False)


def _as(user: pwd.struct_passwd | None, command: list[str]) -> list[str]:
    return command if user is None else ["runuser", "-u", user.pw_name, "--", *command]


def _run(command: list[str], user: pwd.struct_passwd | None, folder: Path, what: str,
         log: Path | None = None) -> None:
    """Run `command` (as `user`, unless None) in `folder`; fail the tests with its output and
    the end of `log` if it fails."""
    # The server's user may not be allowed into the repository: run from a folder it can read.
    done = subprocess.run(_as(user, command), cwd=folder, capture_output=True, text=True,
                          timeout=COMMAND_SECONDS, check=False)
    if done.returncode != 0:
        log_tail = log.read_text(errors="replace")[-2000:] if log and log.is_file() else ""
        pytest.fail(f"PostgreSQL's {what} failed (exit {done.returncode}):\n{done.stdout}"
                    f"{done.stderr}\n{log_tail}", pytrace=False)
