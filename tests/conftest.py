"""Settings every test run shares."""

from __future__ import annotations

import os
import tempfile

# The Search page and search workers keep studies and trials' weights under this folder
# (core.search.storage); a test run, and the app servers it starts, must never write into the
# repository's artifacts/search. Tests that need a fresh storage set their own.
os.environ.setdefault("GATESCOPE_SEARCH_DIR", tempfile.mkdtemp(prefix="gatescope-search-"))

#: The test files that take longest (a full run's --durations, 2026-12-07), first in the
#: collection. pytest-xdist (scripts/test.sh: two workers, each file whole on one) hands out the
#: files with most tests first and keeps this order among files with as many, so the memory
#: soak goes first of the one-test files. Handed out in this order alone, the browser tests all
#: ran at once on both workers, with a browser and a server each on two cores: on a slow
#: evening, a run that had taken 16 minutes had done a fifth of its tests after 16 (stopped).
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
