#!/usr/bin/env bash
# One command to set up and run every check: lint, types, tests (real tools, local servers).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh dev
venv="${ORCHESTRATE_VENV:-$root/.venv}"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy"
# pytest exits 5 when it collected no test: that is a failure here too.
"$venv/bin/python" -m pytest "$@"
