"""The embedded PostgreSQL that `make run` (and `make test` without a server) runs on."""

from __future__ import annotations

import os
import pwd
import socket
import stat
import sys
from pathlib import Path

import psycopg

from defender_portal import embedded_db
from defender_portal.embedded_db import EmbeddedPostgres, choose_test_database, embedded_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import run_portal  # noqa: E402


def _closed_port() -> int:
    # A port nothing listens on: bound, then released.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_test_falls_back_to_the_embedded_server_when_none_answers(tmp_path):
    # As on a machine whose PostgreSQL service is stopped: nothing listens at DATABASE_URL.
    url = f"postgres://root@127.0.0.1:{_closed_port()}/defender_portal"
    choice = choose_test_database(url, var_dir=tmp_path)
    assert choice.embedded_data_dir == tmp_path / "postgres-test"
    assert choice.url == embedded_url(tmp_path / "postgres-test")
    assert "No PostgreSQL answers at 127.0.0.1:" in choice.note


def test_make_test_uses_database_url_when_a_server_answers(tmp_path):
    url = "postgres://root@127.0.0.1:5432/anything"
    choice = choose_test_database(url, var_dir=tmp_path, probe=lambda u: u == url)
    assert (choice.url, choice.embedded_data_dir, choice.note) == (url, None, "")


def test_make_run_starts_the_embedded_server_unless_database_url_is_set(tmp_path):
    # make run never probes a PostgreSQL service: a stopped one makes no difference.
    server = run_portal.embedded_database({"PORTAL_VAR_DIR": str(tmp_path)})
    assert server is not None and server.data_dir == tmp_path / "postgres"
    assert run_portal.embedded_database({"PORTAL_VAR_DIR": str(tmp_path), "DATABASE_URL": ""}) is not None
    assert run_portal.embedded_database({"PORTAL_VAR_DIR": str(tmp_path), "DATABASE_URL": "postgres://h/db"}) is None


def test_a_data_directory_too_deep_for_a_socket_gets_a_short_socket_directory(tmp_path):
    deep = tmp_path / ("d" * 90) / "postgres"
    assert len(str(embedded_db.socket_dir_for(deep))) < 60
    assert embedded_db.socket_dir_for(deep) == embedded_db.socket_dir_for(deep)  # the same every time
    assert embedded_db.socket_dir_for(Path("/srv/var/postgres")) == Path("/srv/var/postgres")


def test_the_server_starts_answers_with_the_search_extensions_and_stops(tmp_path):
    server = EmbeddedPostgres(tmp_path / "var" / "postgres")
    try:
        assert server.start(fast=True) is True
        assert server.start() is False  # already running: reused, not started twice
        with psycopg.connect(server.url(), autocommit=True) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)  # a Unix socket only, no TCP port
            available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
            assert {"unaccent", "pg_trgm"} <= available
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            # Read while connected: the backend process exits with its connection.
            owner = Path(f"/proc/{pid}").stat().st_uid
        if os.geteuid() == 0:
            # PostgreSQL refuses root: the server runs as the unprivileged system user, who owns the data.
            assert owner == pwd.getpwnam(embedded_db.SYSTEM_USER).pw_uid != 0
            assert server.data_dir.stat().st_uid == owner
        else:
            assert owner == os.geteuid()
        assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    finally:
        server.stop()
    assert not server.is_running()
