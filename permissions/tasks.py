"""Thin Celery tasks around the permissions sweeps (scheduled in CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from permissions.services import access_grants_expire_due, access_grants_send_reminders


@shared_task(
    name="permissions.sweep_access_grants",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
    soft_time_limit=120,
    time_limit=180,
)
def sweep_access_grants() -> dict[str, int]:
    """End grants whose end date has arrived, then queue the 7-day reminders.

    Both steps are idempotent and claim their rows with SKIP LOCKED, so a
    retried or overlapping run never acts twice. Expiry runs first so a grant
    that has already ended is never reminded about.
    """
    expired = access_grants_expire_due()
    reminded = access_grants_send_reminders()
    return {"expired": expired, "reminded": reminded}
