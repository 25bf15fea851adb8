"""Thin Celery tasks around the outbox services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from outbox.services import outbox_deliver, outbox_due_ids


@shared_task(
    name="outbox.deliver_message",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def deliver_message(message_id: int) -> str:
    # Safe to run any number of times: the claim inside lets only one send.
    return outbox_deliver(message_id=message_id)


@shared_task(name="outbox.dispatch_due", acks_late=True, soft_time_limit=60, time_limit=90)
def dispatch_due() -> int:
    """Periodic sweep: hand due messages (new, backed-off or orphaned) to workers."""
    ids = outbox_due_ids()
    for message_id in ids:
        deliver_message.delay(message_id)
    return len(ids)
