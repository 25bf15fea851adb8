"""Thin Celery tasks around the readiness services."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import beat_init
from django.db import InterfaceError, OperationalError

from readiness.services import readiness_refresh, readiness_sweep


@shared_task(
    name="readiness.refresh_tenant",
    acks_late=True,
    # A dropped database connection or a lock timeout is worth retrying; the
    # generation guard makes a retry after partial progress a no-op or a redo.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=6,
    soft_time_limit=120,
    time_limit=180,
)
def refresh_tenant(tenant_id: int, generation: int) -> str:
    return readiness_refresh(tenant_id=tenant_id, generation=generation)


@shared_task(name="readiness.sweep", acks_late=True, soft_time_limit=50, time_limit=58)
def sweep() -> dict[str, int]:
    result = readiness_sweep()
    return {
        "created": result.created,
        "capped": result.capped,
        "pulled_in": result.pulled_in,
        "claimed": result.claimed_count,
        "enqueued": result.enqueued,
        "reconciled": result.reconciled,
    }


@beat_init.connect
def sweep_at_start_up(**_: Any) -> None:
    """A sweep as soon as beat starts, not one interval later: refreshes scheduled under longer delays
    than those now in force are brought in at once (``readiness_apply_delay_settings``). Nothing
    touches the database at import; the sweep runs in a worker like every other."""
    sweep.delay()
