#!/usr/bin/env bash
# `make test`: the whole suite against real PostgreSQL and Redis, browser tests
# included. Override the services with DATABASE_URL, REDIS_URL and
# CELERY_BROKER_URL; extra pytest arguments go in PYTEST_ARGS. When no
# PostgreSQL answers at DATABASE_URL, the suite runs on the embedded one
# (var/postgres-test, started here and stopped at the end).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python

export DATABASE_URL=${DATABASE_URL:-postgres://root@127.0.0.1:5432/defender_portal}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/14}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}

# Chromium drives the browser tests; install Debian's when we can (root with apt).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "• Installing Chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# PostgreSQL: the server at DATABASE_URL when one answers, else the embedded one.
# (Prints the embedded server's data directory, or nothing when DATABASE_URL answers.)
embedded_dir=$("$PY" -c 'import os, sys; from pathlib import Path
from defender_portal.embedded_db import choose_test_database
c = choose_test_database(os.environ["DATABASE_URL"], var_dir=Path(os.environ.get("PORTAL_VAR_DIR", "var")))
c.note and print(c.note, file=sys.stderr); print(c.embedded_data_dir or "")') || exit 2

# Fail early, naming what is missing, rather than with a wall of tracebacks.
"$PY" - <<'PYCHECK' || exit 2
import os, sys
from urllib.parse import urlparse

missing = []
for var in ("REDIS_URL", "CELERY_BROKER_URL"):
    url = urlparse(os.environ[var])
    try:
        import redis
        redis.Redis(host=url.hostname or "127.0.0.1", port=url.port or 6379, socket_connect_timeout=5).ping()
    except Exception as exc:
        missing.append(f"Redis at {url.hostname}:{url.port or 6379} ({var}) is unreachable ({type(exc).__name__}). "
                       f"Start it, or set {var}.")
if not os.path.exists("/usr/bin/chromium"):
    missing.append("Chromium is not installed at /usr/bin/chromium (apt-get install chromium); the browser tests need it.")
if missing:
    print("make test cannot run:", *("  - " + m for m in missing), sep="\n", file=sys.stderr)
    sys.exit(1)
PYCHECK

if [ -n "$embedded_dir" ]; then
  DATABASE_URL=$("$PY" -m defender_portal.embedded_db start "$embedded_dir" --fast) || {
    echo "make test cannot run: no PostgreSQL answers at DATABASE_URL and the embedded one did not start." >&2; exit 2; }
  export DATABASE_URL
  trap '"$PY" -m defender_portal.embedded_db stop "$embedded_dir"' EXIT
fi

mkdir -p test-artifacts/screenshots
# --create-db: a fresh test database every run, so CI never trusts a stale schema.
"$PY" -m pytest --create-db ${PYTEST_ARGS:-} "$@"
