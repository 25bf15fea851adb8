"""Health checks for load balancers and container orchestration.

``/healthz/``: the whole portal can work: the web process reaches its database
*and* the broker (without the broker no email or refresh is handed to a
worker). ``/readyz/``: this web process can serve pages: it reaches its
database. Pages keep working with the broker down (mail waits in the outbox),
so a load balancer should route by ``/readyz/`` and an operator alert on
``/healthz/``.

Both are answered by :class:`HealthCheckMiddleware` before any other
middleware, so no cookie a client sends (a session cookie makes the session
middleware read the database) can turn an outage into a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger("portal.health")

BROKER_TIMEOUT_SECONDS = 1.0


def check_database() -> str | None:
    """None when ``SELECT 1`` works, else why not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means the database is unusable
        # Don't keep a broken connection for the next request.
        try:
            connection.close()
        except Exception:  # noqa: BLE001, S110 - it is already broken
            pass
        return f"database unreachable ({type(exc).__name__})"
    return None


def check_broker() -> str | None:
    """None when the Celery broker answers within a second, else why not."""
    from defender_portal.celery import app

    try:
        with app.connection_for_write(
            connect_timeout=BROKER_TIMEOUT_SECONDS,
            transport_options={
                "max_retries": 0,
                "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
                "socket_timeout": BROKER_TIMEOUT_SECONDS,
            },
        ) as conn:
            conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
            client = getattr(conn.default_channel, "client", None)
            if client is not None:  # Redis: make it answer, not just accept the socket
                client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the broker is unusable
        return f"broker unreachable ({type(exc).__name__})"
    return None


def _answer(checks: dict[str, str | None]) -> HttpResponse:
    problems = [reason for reason in checks.values() if reason]
    body = {
        "status": "unavailable" if problems else "ok",
        "checks": {name: reason or "ok" for name, reason in checks.items()},
    }
    if problems:
        body["reason"] = "; ".join(problems)
        logger.warning("health check failed: %s", body["reason"])
    response = JsonResponse(body, status=503 if problems else 200)
    add_never_cache_headers(response)
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database and the broker answer; 503 naming what doesn't."""
    return _answer({"database": check_database(), "broker": check_broker()})


def readyz(request: HttpRequest) -> HttpResponse:
    """200 when this web process can serve pages (its database answers); 503 otherwise."""
    return _answer({"database": check_database()})


HEALTH_VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {"/healthz/": healthz, "/readyz/": readyz}


class HealthCheckMiddleware:
    """Answers the health paths first, before sessions, authentication or CSRF touch anything."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = HEALTH_VIEWS.get(request.path_info)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)


def beat_is_alive(*, within: timedelta = timedelta(minutes=5)) -> bool:
    """Beat stamps ``last_run_at`` on every periodic task it sends; the
    outbox sweep runs every 30 s, so a silent beat shows within minutes."""
    from django_celery_beat.models import PeriodicTask

    latest = (
        PeriodicTask.objects.filter(enabled=True).order_by("-last_run_at").values_list("last_run_at", flat=True).first()
    )
    return latest is not None and timezone.now() - latest < within
