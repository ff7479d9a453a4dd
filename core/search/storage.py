"""Where studies live, named by a URL: one SQLite file by default, or a PostgreSQL server.

- **Embedded (the default)**: `sqlite:///<search directory>/studies.sqlite3`, nothing to
  install. SQLite rather than Optuna's journal file: the journal was faster in
  benchmarks/search_storage.py, but in Optuna 5 it keeps no heartbeat, so a worker killed
  mid-trial would leave its trial "running" forever; RDBStorage's heartbeat marks it failed.
  Three things keep concurrent workers from failing with "database is locked": WAL (readers
  never block the writer), a 60-second busy timeout, and one file lock around creating the
  tables (two workers started at once on a new file both ran Optuna's migrations, and one
  failed with "UNIQUE constraint failed: alembic_version"). PostgreSQL's tables are made under
  an advisory lock for the same reason ("duplicate key value violates unique constraint").
- **Many machines**: `postgresql://user:password@host:5432/database` (psycopg 3), given as
  `--storage` to a worker or in the GATESCOPE_SEARCH_STORAGE environment variable, which also
  points the app's Search page at it.

Every storage keeps a heartbeat: a worker's trial that has not beaten for `grace_seconds()` is
marked failed (by the next trial any worker starts, and by the page that watches), so a killed
worker loses its one trial and nothing else.

A study records the task it was made for, its metric and direction in its user attributes; a
worker asked to run another task's trials on it is refused (`open_study`).
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import optuna
import sqlalchemy.engine
import sqlalchemy.exc
import sqlalchemy.pool

from core.tasks import TASKS, get_task

# Optuna logs every study made and trial ended at INFO; workers print their own line per trial.
optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parents[2]
#: The storage URL of the Search page and of workers given no --storage.
STORAGE_ENV = "GATESCOPE_SEARCH_STORAGE"
#: Where the default SQLite file and the trials' weights go (default: artifacts/search).
DIRECTORY_ENV = "GATESCOPE_SEARCH_DIR"
#: Seconds between a running trial's heartbeats (tests shorten it); a trial is stale after
#: three missed beats.
HEARTBEAT_ENV = "GATESCOPE_SEARCH_HEARTBEAT_SECONDS"
HEARTBEAT_SECONDS = 10
#: Letters, digits, ".", "_" and "-", starting with a letter or digit, at most 64: a name that
#: is safe as a folder name and in a URL, and readable.
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SQLITE_BUSY_SECONDS = 60
POSTGRES_CONNECT_SECONDS = 5
DRIVERS = ("sqlite", "postgresql", "postgresql+psycopg")  # SQLAlchemy 2.1: psycopg 3 either way
GATESCOPE_STUDY = "gatescope"  # the user attribute that marks a study as one of ours


class SearchError(ValueError):
    """A search cannot go on, in words a user can act on (the page and the CLI show them)."""


def search_directory() -> Path:
    return Path(os.environ.get(DIRECTORY_ENV) or ROOT / "artifacts" / "search")


def default_storage_url() -> str:
    """GATESCOPE_SEARCH_STORAGE if set, else the embedded SQLite file."""
    return os.environ.get(STORAGE_ENV) or f"sqlite:///{search_directory() / 'studies.sqlite3'}"


def heartbeat_seconds() -> int:
    try:
        return max(1, int(os.environ.get(HEARTBEAT_ENV, HEARTBEAT_SECONDS)))
    except ValueError:
        return HEARTBEAT_SECONDS


def grace_seconds() -> int:
    return 3 * heartbeat_seconds()


def check_study_name(name: object) -> str:
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 70 else repr(name)[:67] + "..."
        raise SearchError(
            f"A study name is 1 to 64 letters, digits, “.”, “_” or “-”, starting with a letter "
            f"or digit (e.g. adding-lstm-vs-gru); got {shown}.")
    return name


def shown_url(url: str) -> str:
    """The URL with its password hidden, for messages and the page."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return "(not a URL)"


def check_storage_url(url: object) -> str:
    """`url` if it names a storage gatescope can use (SQLite file or PostgreSQL), else
    SearchError saying what one looks like."""
    example = ("sqlite:///path/to/studies.sqlite3 or "
               "postgresql://user:password@host:5432/database")
    if not isinstance(url, str) or not url.strip():
        raise SearchError(f"The study storage needs a URL, such as {example}.")
    try:
        parsed = sqlalchemy.engine.make_url(url.strip())
    except sqlalchemy.exc.ArgumentError:
        raise SearchError(f"“{url[:80]}” is not a storage URL: use {example}.") from None
    if parsed.drivername not in DRIVERS:
        raise SearchError(f"Studies can be kept in SQLite or PostgreSQL, not "
                          f"“{parsed.drivername}”: use {example}.")
    if parsed.drivername == "sqlite" and not parsed.database:
        raise SearchError(f"A SQLite storage needs a file (an in-memory database is gone when "
                          f"the worker ends): use {example}.")
    if parsed.drivername != "sqlite" and not (parsed.host and parsed.database):
        raise SearchError(f"A PostgreSQL URL names a host and a database: use {example}.")
    return url.strip()


_storages: dict[str, optuna.storages.RDBStorage] = {}
_storages_lock = threading.Lock()


def open_storage(url: str | None = None) -> optuna.storages.RDBStorage:
    """The storage at `url` (default: `default_storage_url()`), with a heartbeat; one per URL
    per process (the page polls it every second). SearchError if it cannot be reached."""
    url = check_storage_url(url or default_storage_url())
    with _storages_lock:
        if url not in _storages:
            _storages[url] = _connect(url)
        return _storages[url]


def _connect(url: str) -> optuna.storages.RDBStorage:
    parsed = sqlalchemy.engine.make_url(url)
    sqlite = parsed.drivername == "sqlite"
    connect_args = ({"timeout": SQLITE_BUSY_SECONDS} if sqlite
                    else {"connect_timeout": POSTGRES_CONNECT_SECONDS})
    try:
        tables_lock = (_sqlite_tables_lock(Path(parsed.database)) if sqlite
                       else _postgres_tables_lock(url, connect_args))
        with tables_lock, warnings.catch_warnings():
            # The heartbeat is "experimental" in Optuna 5; it is what marks a killed worker's
            # trial failed, and tests/test_search*.py check it does.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": connect_args},
                heartbeat_interval=heartbeat_seconds(), grace_period=grace_seconds())
    except (sqlalchemy.exc.SQLAlchemyError, OSError, sqlite3.Error, ImportError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0][:300]
        raise SearchError(f"Cannot open the study storage {shown_url(url)}: {reason}") from None


#: The PostgreSQL advisory lock that workers hold while Optuna makes (or checks) its tables.
POSTGRES_TABLES_LOCK = 0x6761746573  # "gates"


@contextmanager
def _postgres_tables_lock(url: str, connect_args: dict):
    """For PostgreSQL: hold a session advisory lock while Optuna creates (or checks) its
    tables; workers started together on a new database otherwise both create them, and one
    fails ("duplicate key value violates unique constraint pg_type_typname_nsp_index")."""
    engine = sqlalchemy.create_engine(url, connect_args=connect_args,
                                      poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"),
                               {"key": POSTGRES_TABLES_LOCK})
            connection.commit()
            yield  # closing the connection releases the lock
    finally:
        engine.dispose()


@contextmanager
def _sqlite_tables_lock(database: Path):
    """For a SQLite file: make its folder, switch it to WAL, and hold a lock on a file beside
    it while Optuna creates (or checks) its tables, so that workers started together do not
    create them twice."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with sqlite3.connect(database, timeout=SQLITE_BUSY_SECONDS) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
            connection.close()
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- studies ---------------------------------------------------------------------------------

def direction(task: str) -> str:
    return "maximize" if get_task(task).metric.higher_is_better else "minimize"


def create_study(name: str, task: str, storage: optuna.storages.BaseStorage,
                 sampler=None, pruner=None, data_seed: int = 0) -> optuna.Study:
    """The study `name` for `task`, made now or loaded if it exists (for the same task); a
    new study records `data_seed`, the seed of every trial's data and initial weights."""
    check_study_name(name)
    task_obj = get_task(task)
    study = optuna.create_study(study_name=name, storage=storage, direction=direction(task),
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    if study.user_attrs.get("task") is None:
        study.set_user_attr(GATESCOPE_STUDY, True)
        study.set_user_attr("task", task_obj.name)
        study.set_user_attr("metric", task_obj.metric.name)
        study.set_user_attr("data_seed", data_seed)
    return _checked(study, task_obj.name)


def open_study(name: str, storage: optuna.storages.BaseStorage, task: str | None = None,
               sampler=None, pruner=None) -> optuna.Study:
    """The existing study `name`; SearchError if there is none, if it is not gatescope's, or
    (with `task`) if it was made for another task."""
    check_study_name(name)
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                  pruner=pruner)
    except KeyError:
        raise SearchError(f"There is no study named “{name}” in this storage.") from None
    return _checked(study, task)


def study_task(study: optuna.Study) -> str:
    task = study.user_attrs.get("task")
    if not study.user_attrs.get(GATESCOPE_STUDY) or task not in TASKS:
        raise SearchError(f"The study “{study.study_name}” was not made by gatescope (it "
                          f"records no gatescope task): use another study name.")
    return task


def _checked(study: optuna.Study, task: str | None) -> optuna.Study:
    made_for = study_task(study)
    if task is not None and get_task(task).name != made_for:
        raise SearchError(
            f"The study “{study.study_name}” was made for the {get_task(made_for).title} task, "
            f"not {get_task(task).title}: its trials' scores cannot be compared. Use another "
            f"study name, or --task {made_for}.")
    return study


def study_names(storage: optuna.storages.BaseStorage) -> dict[str, str]:
    """gatescope's studies in the storage, newest first: name -> "name · task". (Not the
    number of trials: a page that lists the studies once would show a count going stale.)"""
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    ours = [s for s in summaries
            if s.user_attrs.get(GATESCOPE_STUDY) and s.user_attrs.get("task") in TASKS]
    ours.sort(key=lambda s: (s.datetime_start is not None, s.datetime_start), reverse=True)
    return {s.study_name: f"{s.study_name} · {get_task(s.user_attrs['task']).title}"
            for s in ours}
