"""The transactional outbox: every email the portal sends is first a row here,
written in the same transaction as the change that causes it."""

from __future__ import annotations

from datetime import UTC

from django.conf import settings
from django.db import models
from django.utils import timezone


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboxMessage(models.Model):
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="outbox_messages"
    )
    # What the message is for, e.g. "onboarding.welcome" or "contacts.added".
    kind = models.CharField(max_length=80, db_index=True)
    # Set for messages that must exist at most once (e.g. one expiry
    # reminder per grant); enqueueing the same key again is a no-op.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    to = models.JSONField()
    subject = models.CharField(max_length=300)
    text_body = models.TextField()
    html_body = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # The claim: whoever holds claim_token may send; it lapses after
    # OUTBOX_CLAIM_TIMEOUT so a worker that died mid-send doesn't strand it.
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The worker (host name and process id) holding the claim, named on the
    # attempt row if it never reports back.
    claimed_by = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due")]

    def __str__(self) -> str:
        return f"{self.subject} → {', '.join(self.to)} ({self.get_status_display()})"

    @property
    def rfc5322_message_id(self) -> str:
        """The email's ``Message-ID``, derived from the row alone.

        Every attempt at sending this row carries the same value, so a mail
        system that receives a second copy (see outbox/README.md) recognises it
        as the same message. The creation time (to the microsecond) keeps the
        ids of two databases that reuse a primary key apart.
        """
        stamp = self.created_at.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")
        return f"<outbox.{self.pk}.{stamp}@{settings.OUTBOX_MESSAGE_ID_DOMAIN}>"


class AttemptOutcome(models.TextChoices):
    SENT = "sent", "Sent"
    ERROR = "error", "Error"
    # The worker that claimed the message never reported back (it died or
    # lost its connection); the claim lapsed and the message was retried. The
    # earlier attempt may or may not have reached the mail server.
    CLAIM_EXPIRED = "claim_expired", "Claim expired (worker lost)"


class OutboxAttempt(models.Model):
    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=AttemptOutcome.choices)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["message_id", "number", "id"]

    def __str__(self) -> str:
        return f"Attempt {self.number} of message {self.message_id}: {self.get_outcome_display()}"
