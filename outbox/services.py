"""Queue, claim and deliver outbox messages.

Delivery is at-least-once towards the mail server, and every copy of a
message carries the same ``Message-ID`` (exactly-once identity): see
outbox/README.md for the guarantee and the one window where a second copy can
leave. A message is *claimed* (an atomic conditional UPDATE) before it is
sent, so retried tasks and racing workers cannot both send it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from audit.services import audit_record
from core.errors import Conflict
from outbox.models import AttemptOutcome, MessageStatus, OutboxAttempt, OutboxMessage

if TYPE_CHECKING:
    from tenancy.models import Tenant, User

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


# Publishing from a request must never wait for the broker. The kick uses its
# own connection with a short connect timeout and no retries, and after a
# failure the process stops trying for a while: the dispatch sweep delivers
# every row whose kick was lost, within OUTBOX_SWEEP_SECONDS of the broker's
# return.
KICK_CONNECT_TIMEOUT = 0.25
KICK_PAUSE_AFTER_FAILURE = 10.0
_kick_state = threading.local()
_kick_paused_until = 0.0
_clock = time.monotonic


def _kick_connection() -> Any:
    from defender_portal.celery import app

    conn = getattr(_kick_state, "connection", None)
    if conn is None:
        conn = app.connection_for_write(
            connect_timeout=KICK_CONNECT_TIMEOUT,
            transport_options={
                "max_retries": 0,
                "socket_connect_timeout": KICK_CONNECT_TIMEOUT,
                "socket_timeout": 1.0,
            },
        )
        _kick_state.connection = conn
    return conn


def _drop_kick_connection() -> None:
    conn = getattr(_kick_state, "connection", None)
    _kick_state.connection = None
    if conn is not None:
        try:
            conn.release()
        except Exception:  # noqa: BLE001, S110 - a broken connection may not close cleanly
            pass


def _kick(message_id: int) -> None:
    """Hand the message to a worker now, if the broker answers at once."""
    global _kick_paused_until
    from outbox.tasks import deliver_message

    if deliver_message.app.conf.task_always_eager:
        deliver_message.apply_async(args=(message_id,))
        return
    if _clock() < _kick_paused_until:
        return
    try:
        conn = _kick_connection()
        deliver_message.apply_async(args=(message_id,), producer=deliver_message.app.amqp.Producer(conn), retry=False)
    except Exception:  # noqa: BLE001 - the broker being down must not break or slow the request
        _drop_kick_connection()
        _kick_paused_until = _clock() + KICK_PAUSE_AFTER_FAILURE
        logger.warning("could not enqueue delivery of outbox message %s; the sweep will deliver it", message_id)


@dataclass(frozen=True)
class Claim:
    message_id: int
    token: uuid.UUID
    attempt: int


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def outbox_claim(*, message_id: int, now: datetime | None = None) -> Claim | None:
    """Take the right to send one message, or None if someone else holds it.

    Each branch ends in a single conditional UPDATE, so exactly one of any
    number of racing workers matches the row.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    worker = _worker_name()
    with transaction.atomic():
        fresh = OutboxMessage.objects.filter(
            pk=message_id, status=MessageStatus.PENDING, next_attempt_at__lte=now
        ).update(status=MessageStatus.SENDING, claim_token=token, claimed_at=now, claimed_by=worker)
        if not fresh:
            stale_before = now - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT)
            # Read the lapsed claim *before* replacing it: its start time and
            # worker belong on the record of the attempt that was lost.
            lost = (
                OutboxMessage.objects.filter(pk=message_id, status=MessageStatus.SENDING, claimed_at__lt=stale_before)
                .values("claim_token", "claimed_at", "claimed_by", "attempts")
                .first()
            )
            if lost is None:
                return None
            taken = OutboxMessage.objects.filter(
                pk=message_id, status=MessageStatus.SENDING, claim_token=lost["claim_token"]
            ).update(claim_token=token, claimed_at=now, claimed_by=worker)
            if not taken:
                return None
            lost_since: datetime = lost["claimed_at"] or now  # never None: the filter compared it
            lapsed_at = timezone.localtime(lost_since + timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT))
            OutboxAttempt.objects.create(
                message_id=message_id,
                number=lost["attempts"],
                started_at=lost_since,
                # Unknown: the worker never said. The row only says when the loss was noticed.
                finished_at=None,
                outcome=AttemptOutcome.CLAIM_EXPIRED,
                error=(
                    "The worker sending this message stopped responding and its claim expired at "
                    f"{lapsed_at:%H:%M:%S} "
                    "UTC. It may have reached the mail server; it was retried with the same Message-ID."
                ),
                worker=lost["claimed_by"],
            )
        OutboxMessage.objects.filter(pk=message_id).update(attempts=F("attempts") + 1)
        attempt = OutboxMessage.objects.values_list("attempts", flat=True).get(pk=message_id)
    return Claim(message_id=message_id, token=token, attempt=attempt)


def outbox_build_email(message: OutboxMessage) -> EmailMultiAlternatives:
    """The email for a row: the same headers, Message-ID included, on every attempt."""
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text_body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(message.to),
        headers={"Message-ID": message.rfc5322_message_id, "X-Portal-Message-Id": str(message.pk)},
    )
    if message.html_body:
        email.attach_alternative(message.html_body, "text/html")
    return email


def outbox_deliver(*, message_id: int) -> str:
    """Claim and send one message. Returns what happened, for logs and tests.

    Everything that can be done before the mail server accepts the message is
    done before: the claim, the rendering, the connection to the mail server.
    Between its "250 OK" and the commit of "sent" there is a single SQL
    statement; the goodbye to the mail server comes after it.
    """
    claim = outbox_claim(message_id=message_id)
    if claim is None:
        return "skipped"
    message = OutboxMessage.objects.get(pk=message_id)
    started = timezone.now()
    worker = _worker_name()
    backend = get_connection(fail_silently=False)
    try:
        email = outbox_build_email(message)
        email.message()  # built before connecting, so no rendering happens while the server waits
        backend.open()  # held open: send_messages() then leaves the QUIT to us
        accepted = backend.send_messages([email])
        if not accepted:
            raise RuntimeError("The mail backend accepted no message.")
    except Exception as exc:  # noqa: BLE001 - any transport failure is retried
        _close_quietly(backend)
        _record_failure(claim=claim, started=started, worker=worker, error=f"{type(exc).__name__}: {exc}")
        return "error"
    _record_sent(claim=claim, started=started, worker=worker)
    _close_quietly(backend)
    return "sent"


def _close_quietly(backend: Any) -> None:
    try:
        backend.close()
    except Exception:  # noqa: BLE001, S110 - the message's fate is already recorded
        pass


def _record_sent(*, claim: Claim, started: datetime, worker: str) -> None:
    """Mark the message sent and log the attempt in one statement (one round trip)."""
    finished = timezone.now()
    message_table = OutboxMessage._meta.db_table
    attempt_table = OutboxAttempt._meta.db_table
    with connection.cursor() as cursor:
        # Only the holder of the current claim records the result.
        cursor.execute(
            f"""
            WITH sent AS (
                UPDATE {message_table}
                SET status = %s, sent_at = %s, last_error = '', claim_token = NULL, claimed_by = ''
                WHERE id = %s AND claim_token = %s
                RETURNING id
            )
            INSERT INTO {attempt_table} (message_id, number, started_at, finished_at, outcome, error, worker)
            SELECT id, %s, %s, %s, %s, '', %s FROM sent
            """,  # noqa: S608 - table names come from the models, values are parameters
            [
                MessageStatus.SENT,
                finished,
                claim.message_id,
                claim.token,
                claim.attempt,
                started,
                finished,
                AttemptOutcome.SENT,
                worker,
            ],
        )


def _record_failure(*, claim: Claim, started: datetime, worker: str, error: str) -> None:
    now = timezone.now()
    give_up = claim.attempt >= settings.OUTBOX_MAX_ATTEMPTS
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=claim.message_id, claim_token=claim.token).update(
            status=MessageStatus.FAILED if give_up else MessageStatus.PENDING,
            next_attempt_at=now + backoff_delay(claim.attempt),
            last_error=error[:2000],
            claim_token=None,
            claimed_by="",
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


class RetryStale(Conflict):
    """The message failed again (or was retried and failed) since the page was read."""

    message = (
        "This message was retried and failed again since you opened this page, so it wasn't queued. "
        "Review its latest error below and retry again if you still mean to."
    )


@transaction.atomic
def outbox_message_retry(*, message_id: int, acting_user: User, expected_attempts: int | None) -> bool:
    """Staff action: queue a failed message again, audited in its tenant's log. False if nothing changed.

    ``expected_attempts`` is the attempt count the page showed. A message that
    is no longer failed (queued, sending or sent since) needs no retry: the same
    retry sent twice changes nothing. A message that failed again meanwhile is a
    ``RetryStale``: retrying it now would be a decision about an error the
    person hasn't seen.
    """
    message = OutboxMessage.objects.select_for_update().get(pk=message_id)
    if message.status != MessageStatus.FAILED:
        return False
    if expected_attempts is not None and message.attempts != expected_attempts:
        raise RetryStale(current=message)
    outbox_retry_now(message=message)
    audit_record(
        tenant=message.tenant,
        acting_user=acting_user,
        action="outbox.message_retried",
        summary=f'Retried the email "{message.subject}" to {", ".join(message.to)} after {message.attempts} attempts',
        target=message,
        before={"status": MessageStatus.FAILED, "attempts": message.attempts, "last_error": message.last_error[:500]},
        after={"status": MessageStatus.PENDING},
    )
    return True
