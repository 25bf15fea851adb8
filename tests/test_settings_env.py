"""Configuration comes from the environment and fails loudly, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROD_KEY = "prod-secret-" + "k" * 60


def _run(env_overrides: dict[str, str | None], *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "SECURE_", "SESSION_", "CSRF_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "defender_portal.settings",
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal",
            "DEBUG": "0",
            "SECRET_KEY": PROD_KEY,
            "ALLOWED_HOSTS": "portal.example.com",
        }
    )
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "PORTAL_TESTING"):
        env.pop(key, None)
    env.update({k: v for k, v in env_overrides.items() if v is not None})
    for key in [k for k, v in env_overrides.items() if v is None]:
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DEBUG", "maybe", "DEBUG must be a boolean"),
        ("DATABASE_URL", "mysql://db/portal", "DATABASE_URL must start with one of"),
        ("DATABASE_URL", "postgres://127.0.0.1:5432/", "DATABASE_URL must name a database"),
        ("CELERY_BROKER_URL", "amqp://guest@localhost//", "CELERY_BROKER_URL must start with one of"),
        ("EMAIL_PORT", "smtp", "EMAIL_PORT must be a whole number"),
        ("SECRET_KEY", "short", "SECRET_KEY must be at least 50 characters"),
        ("ALLOWED_HOSTS", "", "ALLOWED_HOSTS must list"),
        ("SESSION_COOKIE_AGE", "forever", "SESSION_COOKIE_AGE must be a duration"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, variable, value, expected):
    result = _run({variable: value}, "check", tmp_path=tmp_path)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_secret_key_is_required_in_production(tmp_path):
    result = _run({"SECRET_KEY": ""}, "check", tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_production_settings_pass_check_deploy(tmp_path):
    result = _run({}, "check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_embedded_default_is_the_embedded_postgresql_under_var(tmp_path):
    # Unset DATABASE_URL: the server `make run` starts, on a Unix socket in var/postgres.
    probe = (
        "from django.conf import settings; d = settings.DATABASES['default'];"
        "print(d['ENGINE'], d['HOST'], d['NAME'], d['USER'], settings.CELERY_BROKER_URL)"
    )
    result = _run({"DATABASE_URL": None}, "shell", "-c", probe, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    engine, host, name, user, broker = result.stdout.strip().splitlines()[-1].split()
    assert engine == "django.db.backends.postgresql"
    assert (host, name, user) == (str(tmp_path / "var" / "postgres"), "defender_portal", "postgres")
    assert broker == "filesystem://"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://app:s3cret@db.internal:6543/portal", ("db.internal", "6543", "portal", "app", "s3cret")),
        ("postgres://postgres@/portal?host=/srv/var/postgres", ("/srv/var/postgres", "5432", "portal", "postgres", "")),
        ("postgresql://a%40b:p%2Fw@h/db", ("h", "5432", "db", "a@b", "p/w")),
    ],
)
def test_postgres_url_is_parsed_with_persistent_connections(url, expected):
    from defender_portal.env import database_config, database_url

    os.environ["PORTAL_TEST_DB"] = url
    try:
        cfg = database_config("PORTAL_TEST_DB", "postgres://x/y")
    finally:
        del os.environ["PORTAL_TEST_DB"]
    assert cfg["ENGINE"] == "django.db.backends.postgresql"
    assert (cfg["HOST"], cfg["PORT"], cfg["NAME"], cfg["USER"], cfg["PASSWORD"]) == expected
    assert cfg["CONN_MAX_AGE"] > 0 and cfg["CONN_HEALTH_CHECKS"] is True
    # A child process (a Celery worker) is handed the same database as a URL.
    os.environ["PORTAL_TEST_DB"] = database_url(cfg)
    try:
        again = database_config("PORTAL_TEST_DB", "postgres://x/y")
    finally:
        del os.environ["PORTAL_TEST_DB"]
    assert again == cfg


def test_a_bad_port_or_a_sqlite_url_is_refused():
    from django.core.exceptions import ImproperlyConfigured

    from defender_portal.env import database_config

    for url, message in [
        ("postgres://db:notaport/portal", "PORTAL_TEST_DB has an invalid port"),
        ("sqlite:///var/portal.sqlite3", "PORTAL_TEST_DB must start with one of postgres://, postgresql://"),
    ]:
        os.environ["PORTAL_TEST_DB"] = url
        try:
            with pytest.raises(ImproperlyConfigured, match=message):
                database_config("PORTAL_TEST_DB", "postgres://x/y")
        finally:
            del os.environ["PORTAL_TEST_DB"]


def test_an_unset_secret_key_is_generated_once_under_var(tmp_path):
    probe = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = _run({"SECRET_KEY": None}, "shell", "-c", probe, tmp_path=tmp_path)
    second = _run({"SECRET_KEY": None}, "shell", "-c", probe, tmp_path=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    key_file = tmp_path / "var" / "secret_key"
    key = first.stdout.strip().splitlines()[-1]
    assert key == second.stdout.strip().splitlines()[-1] == key_file.read_text().strip()
    assert len(key) >= 50 and (key_file.stat().st_mode & 0o777) == 0o600
    assert _run({"SECRET_KEY": None}, "check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path).returncode == 0
