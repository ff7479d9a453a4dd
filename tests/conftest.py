"""Settings every test run shares."""

from __future__ import annotations

import os
import tempfile

# The Search page and search workers keep studies and trials' weights under this folder
# (core.search.storage); a test run, and the app servers it starts, must never write into the
# repository's artifacts/search. Tests that need a fresh storage set their own.
os.environ.setdefault("GATESCOPE_SEARCH_DIR", tempfile.mkdtemp(prefix="gatescope-search-"))

#: The test files that take longest (a full run's --durations, 2026-12-07), started first: the
#: suite runs on two workers with each file whole on one (scripts/test.sh), and a long file
#: started last kept one worker busy for two minutes after the other had finished.
LONGEST_FIRST = (
    "tests/e2e/test_soak.py",
    "tests/e2e/test_keyboard_browser.py",
    "tests/test_train_page.py",
    "tests/e2e/test_readability_browser.py",
    "tests/test_search_postgres.py",
    "tests/e2e/test_explore_browser.py",
    "tests/e2e/test_faithful_browser.py",
    "tests/e2e/test_lab_and_train.py",
    "tests/e2e/test_load.py",
    "tests/e2e/test_search_browser.py",
)


def pytest_collection_modifyitems(config, items):
    """Run `LONGEST_FIRST`'s files first, in that order; the rest keep theirs."""
    rank = {path: k for k, path in enumerate(LONGEST_FIRST)}
    root = config.rootpath
    items.sort(key=lambda item: rank.get(item.path.relative_to(root).as_posix(), len(rank)))
