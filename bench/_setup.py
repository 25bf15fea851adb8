"""Shared set-up for the benchmarks: the project on ``sys.path``, environment defaults, a migrated PostgreSQL database.

Each benchmark picks its own database and settings, then calls :func:`bootstrap` before touching Django::

    from _setup import bootstrap, percentile

    bootstrap("portal_contacts_bench", settings="defender_portal.settings")

Variables already set in the environment win over these defaults; ``DATABASE_URL`` defaults to the
benchmark's database on the local server (``postgres://root@127.0.0.1:5432/<database>``), or, when none
answers there, on the embedded PostgreSQL (``var/postgres-bench``, started and stopped by the benchmark).
Run on its own (``make bench`` runs every ``bench/*.py``) this module does nothing.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = "postgres://root@127.0.0.1:5432"
# The machine's Redis, on databases of their own (the test suite uses 14 and 15).
REDIS_DEFAULTS = {"REDIS_URL": "redis://127.0.0.1:6379/9", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/10"}

# The production settings refuse to start without these when DEBUG is off;
# tests.settings fills in its own (test client host, Redis DBs 14/15, eager Celery).
PORTAL_DEFAULTS = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123456789",
    "ALLOWED_HOSTS": "localhost",
    "PORTAL_TESTING": "1",
    "PORTAL_VAR_DIR": "/tmp/defender-portal-bench-var",
}


def _default_server(database: str) -> str:
    """The local server when one answers on 127.0.0.1:5432, else the embedded PostgreSQL (var/postgres-bench)."""
    from defender_portal.embedded_db import EmbeddedPostgres, answers

    url = f"{SERVER}/{database}"
    if answers(url):
        return url
    server = EmbeddedPostgres(ROOT / "var" / "postgres-bench")
    print(f"No PostgreSQL answers at 127.0.0.1:5432: benchmarking on the embedded one in {server.data_dir}")
    if server.start():
        atexit.register(server.stop)  # started here: stopped when the benchmark ends
    return server.url(database)


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database ``url`` names if it does not exist yet."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def bootstrap(
    database: str,
    *,
    settings: str = "tests.settings",
    on_server_of_url: bool = False,
    redis: bool = False,
    refusal: str = "Set DATABASE_URL to a postgres:// URL.",
) -> None:
    """Fill in the environment, then create (if missing) and migrate the database and set up Django.

    ``database`` is the default database of ``DATABASE_URL``; with ``on_server_of_url`` it is always
    the database used, on the server of ``DATABASE_URL`` whatever database that URL names (for a
    benchmark that resets its data). ``settings`` is the default ``DJANGO_SETTINGS_MODULE``; with
    ``redis`` the cache and the Celery broker default to the local Redis. Exits with ``refusal``
    unless the database is PostgreSQL.
    """
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = _default_server(database)
    if settings == "defender_portal.settings":
        for name, value in PORTAL_DEFAULTS.items():
            os.environ.setdefault(name, value)
    if redis:
        for name, value in REDIS_DEFAULTS.items():
            os.environ.setdefault(name, value)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings)

    url = os.environ["DATABASE_URL"]
    if not url.startswith("postgres"):
        raise SystemExit(refusal)
    if on_server_of_url:
        url = urlparse(url)._replace(path=f"/{database}").geturl()
        os.environ["DATABASE_URL"] = url
    ensure_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], pct: float) -> float:
    """The ``pct``-th percentile (0-100) of ``values``: the nearest rank, no interpolation."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


class QueryLog:
    """A ``connection.execute_wrapper`` that keeps the SQL of every query run through it."""

    def __init__(self) -> None:
        self.executed: list[str] = []

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        self.executed.append(sql)
        return execute(sql, params, many, context)
