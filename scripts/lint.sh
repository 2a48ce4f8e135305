#!/usr/bin/env bash
# Lint: ruff over the whole tree, then mypy --strict over sgcommon, controller and exporter, both
# configured in pyproject.toml. Runs both even when the first finds problems (one run shows them
# all) and exits non-zero if either does. Needs .venv from scripts/install.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
run() {
  printf '\n==> lint: %s\n' "$*"
  "$@" || status=1
}
run .venv/bin/ruff check .
run .venv/bin/mypy
exit "$status"
