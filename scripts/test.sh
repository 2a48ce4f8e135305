#!/usr/bin/env bash
# The README's test command: installs everything from scratch, then runs every test suite
# (unit, slow, real servers, real engine and the Swarm lab). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
printf '\n==> pytest (all markers)\n'
exec .venv/bin/python -m pytest "$@"
