#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# The README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's Chromium drives the real-browser tests (Playwright cannot download browsers here);
# Debian's PostgreSQL serves the search tests' shared studies (tests/postgres.py starts a server
# of its own, finding initdb on PATH or in /usr/lib/postgresql/<version>/bin).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ! command -v initdb >/dev/null 2>&1 \
    && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi
if ((${#missing[@]})); then
  apt-get update && apt-get install -y "${missing[@]}"
fi
python3 -m pip install --quiet -r requirements-dev.txt

# Two workers (pytest-xdist), one per core of CI's 2-core machine, each test file whole on one
# worker (its module fixtures, such as a Streamlit server, start once). pytest's own exit code
# stands: 5 (no tests collected) fails this script too.
exec python3 -m pytest -n 2 --dist loadfile "$@"
