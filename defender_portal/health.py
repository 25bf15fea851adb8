"""Liveness checks used by docker-compose health checks."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the web process can reach its database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


def beat_is_alive(*, within: timedelta = timedelta(minutes=5)) -> bool:
    """Beat stamps ``last_run_at`` on every periodic task it sends; the
    outbox sweep runs every 30 s, so a silent beat shows within minutes."""
    from django_celery_beat.models import PeriodicTask

    latest = (
        PeriodicTask.objects.filter(enabled=True).order_by("-last_run_at").values_list("last_run_at", flat=True).first()
    )
    return latest is not None and timezone.now() - latest < within
