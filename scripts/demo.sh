#!/usr/bin/env bash
# The README's demo command. Until the lab exists it installs everything and runs the
# stress app locally, then shows a short ramped CPU stress through its HTTP API.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/python -m stressapp.demo "$@"
