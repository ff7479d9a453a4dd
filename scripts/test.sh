#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# The README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's Chromium drives the real-browser tests (Playwright cannot download browsers here).
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update && apt-get install -y chromium
fi
python3 -m pip install --quiet -r requirements-dev.txt

# pytest's own exit code stands: 5 (no tests collected) fails this script too.
exec python3 -m pytest "$@"
