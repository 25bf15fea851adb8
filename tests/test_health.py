"""/healthz/ (database and broker) and /readyz/ (database): 503 naming the cause, whatever the request carries."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError, connection

pytestmark = pytest.mark.django_db


def test_both_answer_ok_when_all_is_up(client):
    healthz = client.get("/healthz/")
    assert healthz.status_code == 200
    assert healthz.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    assert "no-cache" in healthz["Cache-Control"]
    assert client.get("/readyz/").json() == {"status": "ok", "checks": {"database": "ok"}}
    assert client.head("/healthz/").status_code == 200


@pytest.fixture
def database_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every query fails as it does while PostgreSQL restarts."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(connection, "cursor", refused)
    monkeypatch.setattr(connection, "close", lambda: None)  # the test's own connection stays for teardown


@pytest.mark.parametrize("signed_in", [False, True])
def test_database_down_is_a_503_with_a_reason_whatever_the_cookies(client, admin, signed_in, database_down):
    """Before: with a session cookie, the session middleware queried the database first and the answer was 500."""
    if signed_in:
        client.cookies["sessionid"] = "x" * 32
        client.cookies["csrftoken"] = "y" * 32
    for url in ("/healthz/", "/readyz/"):
        response = client.get(url)
        assert response.status_code == 503, url
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "database unreachable (OperationalError)"
        assert body["reason"].startswith("database unreachable")


def test_a_real_session_does_not_turn_an_outage_into_a_500(client, admin, monkeypatch):
    client.force_login(admin)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(connection, "cursor", refused)
    monkeypatch.setattr(connection, "close", lambda: None)
    assert client.get("/healthz/").status_code == 503


def test_broker_down_fails_healthz_but_not_readyz(client):
    from defender_portal.celery import app

    saved = app.conf.broker_write_url
    app.conf.broker_write_url = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        healthz = client.get("/healthz/")
        readyz = client.get("/readyz/")
    finally:
        app.conf.broker_write_url = saved
    assert healthz.status_code == 503
    assert healthz.json()["checks"] == {"database": "ok", "broker": "broker unreachable (OperationalError)"}
    assert healthz.json()["reason"] == "broker unreachable (OperationalError)"
    # Pages work without the broker (mail waits in the outbox): a load balancer keeps routing here.
    assert readyz.status_code == 200


def test_health_paths_skip_host_redirects_and_sessions(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert "sessionid" not in response.cookies
