"""The welcome email through the outbox: written with the invitation, sent once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from onboarding.models import Invitation
from onboarding.services import WELCOME_KIND, invitation_send
from outbox.models import AttemptOutcome, MessageStatus, OutboxMessage
from outbox.services import outbox_claim, outbox_due_ids
from outbox.tasks import deliver_message
from tenancy.models import ServicePhase


@pytest.mark.django_db(transaction=True)
def test_the_welcome_email_leaves_once_the_invitation_commits(contoso, sdm, admin):
    with transaction.atomic():
        invitation_send(tenant=contoso, acting_user=sdm)
        assert mail.outbox == []  # nothing leaves before the commit
    assert len(mail.outbox) == 1
    message = OutboxMessage.objects.get(kind=WELCOME_KIND)
    assert message.status == MessageStatus.SENT
    assert Invitation.objects.get(tenant=contoso).outbox_message == message


@pytest.mark.django_db(transaction=True)
def test_a_failed_invitation_leaves_no_email_behind(contoso, sdm, admin, monkeypatch):
    def broken_phase_change(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr("onboarding.services.tenant_change_phase", broken_phase_change)
    with pytest.raises(RuntimeError):
        invitation_send(tenant=contoso, acting_user=sdm)
    assert not OutboxMessage.objects.exists()
    assert not Invitation.objects.exists()
    assert mail.outbox == []
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.NOT_INVITED


@pytest.mark.django_db
def test_a_retried_send_task_does_not_send_the_welcome_email_twice(
    contoso, sdm, admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        invitation_send(tenant=contoso, acting_user=sdm)
    message = OutboxMessage.objects.get(kind=WELCOME_KIND)
    # Celery redelivers the task (acks_late after a lost ack, or an autoretry).
    assert deliver_message.apply(args=[message.pk]).get() == "sent"
    assert deliver_message.apply(args=[message.pk]).get() == "skipped"
    assert deliver_message.apply(args=[message.pk]).get() == "skipped"
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    assert message.attempts == 1
    assert list(message.attempt_log.values_list("outcome", flat=True)) == [AttemptOutcome.SENT]


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_send_the_welcome_email_once(contoso, sdm, admin, settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr("outbox.services._kick", lambda message_id: None)  # the workers below do the sending
    invitation_send(tenant=contoso, acting_user=sdm)
    message = OutboxMessage.objects.get(kind=WELCOME_KIND)

    from django.core.mail.backends.locmem import EmailBackend

    original = EmailBackend.send_messages

    def slow_send(self, messages):
        time.sleep(0.2)  # widen the window in which a second worker could slip in
        return original(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", slow_send)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(deliver_message.apply(args=[message.pk]).get())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["sent", "skipped"]
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.attempts == 1


@pytest.mark.django_db
def test_a_worker_dying_mid_send_is_retried_after_the_claim_times_out(
    contoso, sdm, admin, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        invitation_send(tenant=contoso, acting_user=sdm)
    message = OutboxMessage.objects.get(kind=WELCOME_KIND)
    assert outbox_claim(message_id=message.pk) is not None  # ...and the worker dies
    assert deliver_message.apply(args=[message.pk]).get() == "skipped"
    assert mail.outbox == []
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT + 1), tick=False):
        assert outbox_due_ids() == [message.pk]
        assert deliver_message.apply(args=[message.pk]).get() == "sent"
    assert len(mail.outbox) == 1
    outcomes = list(message.attempt_log.values_list("outcome", flat=True))
    assert outcomes == [AttemptOutcome.CLAIM_EXPIRED, AttemptOutcome.SENT]


@pytest.mark.django_db
def test_resending_is_a_new_message_each_time_but_each_invitation_has_one(
    contoso, sdm, admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        first = invitation_send(tenant=contoso, acting_user=sdm)
        second = invitation_send(tenant=contoso, acting_user=sdm, resend=True)
    assert first.outbox_message_id != second.outbox_message_id
    keys = set(OutboxMessage.objects.values_list("dedupe_key", flat=True))
    assert keys == {f"{WELCOME_KIND}:{first.pk}", f"{WELCOME_KIND}:{second.pk}"}
