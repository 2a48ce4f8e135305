#!/usr/bin/env bash
# The README's test command: installs everything from scratch, then runs every test suite
# (unit, slow, real servers, real engine and the Swarm lab), after the lint (scripts/lint.sh: ruff and
# mypy --strict). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
scripts/lint.sh
# The multi-node Swarm lab (markers engine, swarm): up and build are idempotent and cached. Outside
# CI a lab that cannot start only makes those tests skip with the reason; under CI it is a failure.
if [ "$(id -u)" = 0 ]; then
  printf '\n==> lab: swarm/lab up && swarm/lab build\n'
  swarm/lab up && swarm/lab build || [ "${CI:-}" != true ]
fi
printf '\n==> pytest (all markers)\n'
exec .venv/bin/python -m pytest "$@"
