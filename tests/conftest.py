"""Settings every test run shares."""

from __future__ import annotations

import os
import tempfile

# The Search page and search workers keep studies and trials' weights under this folder
# (core.search.storage); a test run, and the app servers it starts, must never write into the
# repository's artifacts/search. Tests that need a fresh storage set their own.
os.environ.setdefault("GATESCOPE_SEARCH_DIR", tempfile.mkdtemp(prefix="gatescope-search-"))
