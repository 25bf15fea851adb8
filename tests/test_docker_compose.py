"""docker-compose.yml describes the production shape, and every command in it
points at modules and settings that exist (no Docker engine runs here)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_production_shape_is_complete():
    assert {"postgres", "redis", "web", "worker", "beat", "mailpit"} <= set(SERVICES)
    assert (ROOT / "Dockerfile").exists()
    assert {"pgdata", "redisdata"} <= set(COMPOSE["volumes"])
    for name in ("postgres", "redis", "web", "worker", "beat", "mailpit"):
        assert "healthcheck" in SERVICES[name], f"{name} has no health check"


def test_exactly_one_beat():
    assert SERVICES["beat"].get("deploy", {}).get("replicas", 1) == 1
    beats = [n for n, s in SERVICES.items() if "beat" in " ".join(s.get("command", []))]
    assert beats == ["beat"]


def _command(name: str) -> list[str]:
    command = SERVICES[name]["command"]
    return command if isinstance(command, list) else command.split()


def test_web_runs_gunicorn_on_the_wsgi_application():
    command = _command("web")
    assert command[0] == "gunicorn"
    module, attr = command[1].split(":")
    assert callable(getattr(importlib.import_module(module), attr))


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_celery_commands_point_at_the_celery_app(name):
    command = _command(name)
    assert command[:2] == ["celery", "-A"]
    app_module = importlib.import_module(command[2])
    assert app_module.celery_app.main == "defender_portal"
    assert command[3] == name


def test_manage_py_commands_exist():
    from django.core.management import get_commands

    commands = get_commands()
    for name, service in SERVICES.items():
        for argv in (service.get("command"), service.get("healthcheck", {}).get("test")):
            if isinstance(argv, list) and "manage.py" in argv:
                sub = argv[argv.index("manage.py") + 1]
                assert sub in commands, f"{name} runs unknown manage.py command {sub}"


def test_every_service_uses_settings_that_exist():
    env = COMPOSE["x-portal"]["environment"]
    settings_module = importlib.import_module(env["DJANGO_SETTINGS_MODULE"])
    source = Path(settings_module.__file__).read_text()
    for key in env:
        if key == "DJANGO_SETTINGS_MODULE":
            continue
        assert f'"{key}"' in source, f"docker-compose sets {key}, which the settings never read"
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
    assert env["EMAIL_HOST"] == "mailpit"


def test_healthz_answers(client, db):
    assert client.get("/healthz/").json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    assert client.get("/readyz/").json() == {"status": "ok", "checks": {"database": "ok"}}
