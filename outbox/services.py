"""Queue, claim and deliver outbox messages.

Delivery is at-least-once towards the mail server and exactly-once in every
normal path: a message is *claimed* (an atomic conditional UPDATE) before it
is sent, so retried tasks and racing workers cannot both send it. Only if a
worker dies between handing the message to the mail server and recording
the result can it be sent again, once its claim lapses; that attempt is
recorded as ``claim_expired``.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from outbox.models import AttemptOutcome, MessageStatus, OutboxAttempt, OutboxMessage

if TYPE_CHECKING:
    from tenancy.models import Tenant

logger = logging.getLogger("portal.outbox")

# Retry delays grow 30 s, 1 min, 2 min, ... capped at one hour. They live in
# next_attempt_at and are honoured by the periodic dispatch sweep, never as
# broker countdowns.
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600


def backoff_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS))


def outbox_enqueue(
    *,
    tenant: Tenant | None,
    kind: str,
    to: Iterable[str],
    subject: str,
    template: str,
    context: Mapping[str, Any],
    dedupe_key: str | None = None,
) -> OutboxMessage:
    """Render and queue an email in the caller's transaction.

    ``template`` names ``<template>.txt`` and ``<template>.html``; both are
    rendered now, so a retry sends exactly what was decided at the time.
    Delivery is kicked off once the transaction commits; if that signal is
    lost, the periodic dispatch sweep still finds the row.
    """
    recipients = sorted({addr.strip().lower() for addr in to if addr and addr.strip()})
    if not recipients:
        raise ValueError("An outbox message needs at least one recipient.")
    ctx = {"portal_base_url": settings.PORTAL_BASE_URL, "tenant": tenant, "subject": subject, **context}
    text_body = render_to_string(f"{template}.txt", ctx)
    html_body = render_to_string(f"{template}.html", ctx)
    fields = dict(tenant=tenant, kind=kind, to=recipients, subject=subject, text_body=text_body, html_body=html_body)
    if dedupe_key is not None:
        existing = OutboxMessage.objects.filter(dedupe_key=dedupe_key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                message = OutboxMessage.objects.create(dedupe_key=dedupe_key, **fields)
        except IntegrityError:
            # A concurrent transaction queued the same message first.
            return OutboxMessage.objects.get(dedupe_key=dedupe_key)
    else:
        message = OutboxMessage.objects.create(**fields)
    transaction.on_commit(lambda: _kick(message.pk))
    return message


def _kick(message_id: int) -> None:
    from outbox.tasks import deliver_message

    try:
        deliver_message.delay(message_id)
    except Exception:  # noqa: BLE001 - the broker being down must not break the request
        logger.warning("could not enqueue delivery of outbox message %s; the sweep will retry", message_id)


@dataclass(frozen=True)
class Claim:
    message_id: int
    token: uuid.UUID
    attempt: int


def outbox_claim(*, message_id: int, now: Any = None) -> Claim | None:
    """Take the right to send one message, or None if someone else holds it.

    Each branch is a single conditional UPDATE, so exactly one of any number
    of racing workers matches the row.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        fresh = OutboxMessage.objects.filter(
            pk=message_id, status=MessageStatus.PENDING, next_attempt_at__lte=now
        ).update(status=MessageStatus.SENDING, claim_token=token, claimed_at=now)
        if not fresh:
            stale_before = now - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT)
            lapsed = OutboxMessage.objects.filter(
                pk=message_id, status=MessageStatus.SENDING, claimed_at__lt=stale_before
            ).update(status=MessageStatus.SENDING, claim_token=token, claimed_at=now)
            if not lapsed:
                return None
            message = OutboxMessage.objects.get(pk=message_id)
            OutboxAttempt.objects.create(
                message=message,
                number=message.attempts,
                started_at=message.claimed_at or now,
                finished_at=now,
                outcome=AttemptOutcome.CLAIM_EXPIRED,
                error="The worker sending this message stopped responding; its claim expired and it was retried.",
            )
        OutboxMessage.objects.filter(pk=message_id).update(attempts=F("attempts") + 1)
        attempt = OutboxMessage.objects.values_list("attempts", flat=True).get(pk=message_id)
    return Claim(message_id=message_id, token=token, attempt=attempt)


def outbox_deliver(*, message_id: int) -> str:
    """Claim and send one message. Returns what happened, for logs and tests."""
    claim = outbox_claim(message_id=message_id)
    if claim is None:
        return "skipped"
    message = OutboxMessage.objects.get(pk=message_id)
    started = timezone.now()
    worker = socket.gethostname()
    try:
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.text_body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=list(message.to),
            headers={"X-Portal-Message-Id": str(message.pk)},
        )
        if message.html_body:
            email.attach_alternative(message.html_body, "text/html")
        email.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - any transport failure is retried
        _record_failure(claim=claim, started=started, worker=worker, error=f"{type(exc).__name__}: {exc}")
        return "error"
    finished = timezone.now()
    with transaction.atomic():
        # Only the holder of the current claim records the result.
        OutboxMessage.objects.filter(pk=message_id, claim_token=claim.token).update(
            status=MessageStatus.SENT, sent_at=finished, last_error="", claim_token=None
        )
        OutboxAttempt.objects.create(
            message_id=message_id,
            number=claim.attempt,
            started_at=started,
            finished_at=finished,
            outcome=AttemptOutcome.SENT,
            worker=worker,
        )
    return "sent"


def _record_failure(*, claim: Claim, started: Any, worker: str, error: str) -> None:
    now = timezone.now()
    give_up = claim.attempt >= settings.OUTBOX_MAX_ATTEMPTS
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=claim.message_id, claim_token=claim.token).update(
            status=MessageStatus.FAILED if give_up else MessageStatus.PENDING,
            next_attempt_at=now + backoff_delay(claim.attempt),
            last_error=error[:2000],
            claim_token=None,
        )
        OutboxAttempt.objects.create(
            message_id=claim.message_id,
            number=claim.attempt,
            started_at=started,
            finished_at=now,
            outcome=AttemptOutcome.ERROR,
            error=error[:2000],
            worker=worker,
        )
    logger.warning("outbox message %s attempt %s failed: %s", claim.message_id, claim.attempt, error)


def outbox_due_ids(*, now: Any = None, limit: int = 500) -> list[int]:
    """Messages ready to (re)try: due pending ones and ones whose claim lapsed."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT)
    return list(
        OutboxMessage.objects.filter(
            Q(status=MessageStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=MessageStatus.SENDING, claimed_at__lt=stale_before)
        )
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


@transaction.atomic
def outbox_retry_now(*, message: OutboxMessage) -> None:
    """Staff action: retry a failed message at the next sweep."""
    OutboxMessage.objects.filter(pk=message.pk, status=MessageStatus.FAILED).update(
        status=MessageStatus.PENDING, next_attempt_at=timezone.now()
    )
    transaction.on_commit(lambda: _kick(message.pk))
