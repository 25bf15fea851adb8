"""The transactional outbox: written with the change, claimed before sending, never sent twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from outbox.models import AttemptOutcome, MessageStatus, OutboxMessage
from outbox.services import outbox_claim, outbox_deliver, outbox_due_ids, outbox_enqueue
from outbox.tasks import deliver_message, dispatch_due


def _enqueue(tenant, **extra):
    return outbox_enqueue(
        tenant=tenant,
        kind="test.hello",
        to=["Someone@Contoso.example"],
        subject="Hello",
        template="emails/test/hello",
        context={"name": "Avery"},
        **extra,
    )


@pytest.mark.django_db(transaction=True)
def test_message_is_sent_once_the_transaction_commits(contoso):
    with transaction.atomic():
        message = _enqueue(contoso)
        assert mail.outbox == []  # nothing leaves before commit
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["someone@contoso.example"]
    assert "Hello Avery." in sent.body
    assert sent.alternatives and "Hello Avery." in sent.alternatives[0][0]
    assert [a.outcome for a in message.attempt_log.all()] == [AttemptOutcome.SENT]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_change_sends_nothing(contoso):
    with pytest.raises(RuntimeError), transaction.atomic():
        _enqueue(contoso)
        raise RuntimeError("the change failed")
    assert OutboxMessage.objects.count() == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_retried_task_does_not_send_twice(contoso, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        message = _enqueue(contoso)
    assert deliver_message.apply(args=[message.pk]).get() == "sent"
    assert deliver_message.apply(args=[message.pk]).get() == "skipped"
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_racing_workers_send_it_once(contoso, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with transaction.atomic():
        message = OutboxMessage.objects.create(
            tenant=contoso, kind="test", to=["a@contoso.example"], subject="Race", text_body="x"
        )
    barrier = threading.Barrier(4)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(outbox_deliver(message_id=message.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["sent", "skipped", "skipped", "skipped"]
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    assert message.attempts == 1


@pytest.mark.django_db
def test_a_lapsed_claim_is_retried_and_recorded_as_such(contoso, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        message = _enqueue(contoso)
    claim = outbox_claim(message_id=message.pk)
    assert claim is not None
    # The worker holding the claim dies: within the timeout nobody may take over...
    assert outbox_deliver(message_id=message.pk) == "skipped"
    later = timezone.now() + timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT + 1)
    with time_machine.travel(later, tick=False):
        assert message.pk in outbox_due_ids()
        # ...after it, the message is retried and the lost attempt is on record.
        assert outbox_deliver(message_id=message.pk) == "sent"
    outcomes = list(message.attempt_log.values_list("outcome", flat=True))
    assert outcomes == [AttemptOutcome.CLAIM_EXPIRED, AttemptOutcome.SENT]
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_failures_back_off_and_finally_fail(contoso, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.OUTBOX_MAX_ATTEMPTS = 3

    def broken_send(self, messages):
        raise ConnectionRefusedError("SMTP server unavailable")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", broken_send)
    with django_capture_on_commit_callbacks(execute=False):
        message = _enqueue(contoso)
    assert outbox_deliver(message_id=message.pk) == "error"
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING
    first_delay = message.next_attempt_at - timezone.now()
    assert timedelta(seconds=20) < first_delay <= timedelta(seconds=30)
    # Not due yet: a premature retry does nothing.
    assert outbox_deliver(message_id=message.pk) == "skipped"
    for _ in range(2):
        with time_machine.travel(message.next_attempt_at + timedelta(seconds=1), tick=False):
            assert outbox_deliver(message_id=message.pk) == "error"
        message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert "SMTP server unavailable" in message.last_error
    assert message.attempt_log.filter(outcome=AttemptOutcome.ERROR).count() == 3


@pytest.mark.django_db
def test_dedupe_key_queues_a_message_at_most_once(contoso, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first = _enqueue(contoso, dedupe_key="reminder:grant:1")
        second = _enqueue(contoso, dedupe_key="reminder:grant:1")
    assert first.pk == second.pk
    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db
def test_dispatch_sweep_delivers_messages_whose_kick_was_lost(contoso, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the on-commit kick never runs
        _enqueue(contoso)
    assert dispatch_due.apply().get() == 1
    assert len(mail.outbox) == 1
    assert dispatch_due.apply().get() == 0


@pytest.mark.django_db
def test_staff_see_the_outbox_and_members_do_not(login, sdm, admin, contoso, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = _enqueue(contoso)
    client = login(sdm)
    page = client.get(reverse("outbox:list"))
    assert page.status_code == 200
    assert b"Hello" in page.content and b"Sent" in page.content
    detail = client.get(reverse("outbox:detail", args=[message.pk]))
    assert b"Hello Avery." in detail.content
    assert client.get(reverse("outbox:detail", args=[999999])).status_code == 404
    client.logout()
    client.force_login(admin)
    assert client.get(reverse("outbox:list")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 30])
def test_outbox_page_runs_a_fixed_number_of_queries(count, login, sdm, contoso, django_assert_num_queries):
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(tenant=contoso, kind="t", to=["a@b.example"], subject=f"m{i}", text_body="x")
            for i in range(count)
        ]
    )
    client = login(sdm)
    # session, user, no membership, provider staff (with organisation), count, page of messages with tenants.
    with django_assert_num_queries(6):
        assert client.get(reverse("outbox:list")).status_code == 200
