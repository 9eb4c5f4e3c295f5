#!/usr/bin/env bash
# One command to set up and run orchestrate: ./orchestrate.sh suite full
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$root/scripts/setup.sh" main >&2
exec "${ORCHESTRATE_VENV:-$root/.venv}/bin/orchestrate" "$@"
