"""The outbox under faults: a worker dying after the mail server accepted a message,
a lapsed claim, and a broker that doesn't answer (see outbox/README.md)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from outbox import services
from outbox.models import AttemptOutcome, MessageStatus, OutboxMessage
from outbox.services import outbox_claim, outbox_deliver, outbox_due_ids, outbox_enqueue
from outbox.tasks import dispatch_due

# RFC 5322 msg-id: "<" id-left "@" id-right ">" (dot-atom-text on both sides).
MSG_ID = re.compile(r"^<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+>$")


def _enqueue(tenant: Any, name: str = "Avery") -> OutboxMessage:
    return outbox_enqueue(
        tenant=tenant,
        kind="test.hello",
        to=["someone@contoso.example"],
        subject="Hello",
        template="emails/test/hello",
        context={"name": name},
    )


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs, no except clause catches it."""


@pytest.mark.django_db
def test_every_row_has_its_own_rfc5322_message_id(contoso, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first, second = _enqueue(contoso), _enqueue(contoso, "Blake")
    ids = [m.extra_headers["Message-ID"] for m in mail.outbox]
    assert ids == [first.rfc5322_message_id, second.rfc5322_message_id]
    assert ids[0] != ids[1]
    for value in ids:
        assert MSG_ID.match(value), value
        assert value.endswith("@experts.example>")
    # What leaves is the header itself, not Django's random make_msgid().
    assert mail.outbox[0].message()["Message-ID"] == first.rfc5322_message_id
    # Derived from the row alone: reading the row again gives the same id.
    assert OutboxMessage.objects.get(pk=first.pk).rfc5322_message_id == first.rfc5322_message_id


@pytest.mark.django_db
def test_a_worker_killed_after_the_mail_server_accepted_resends_the_same_message_id(
    contoso, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The one window in outbox/README.md: the copy that goes out again is the same message."""
    with django_capture_on_commit_callbacks(execute=False):
        message = _enqueue(contoso)
    claimed_at = (timezone.now() + timedelta(seconds=1)).replace(microsecond=0)

    def killed(**kwargs: Any) -> None:
        raise WorkerKilled

    with monkeypatch.context() as patch, time_machine.travel(claimed_at, tick=False):
        patch.setattr(services, "_record_sent", killed)
        with pytest.raises(WorkerKilled):
            outbox_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.SENDING and len(mail.outbox) == 1
    lost_worker = message.claimed_by
    assert lost_worker

    retry_at = claimed_at + timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT + 5)
    with time_machine.travel(retry_at, tick=False):
        assert outbox_deliver(message_id=message.pk) == "sent"
    assert len(mail.outbox) == 2
    assert mail.outbox[0].extra_headers["Message-ID"] == mail.outbox[1].extra_headers["Message-ID"]
    assert mail.outbox[1].message()["Message-ID"] == message.rfc5322_message_id

    lost, sent = message.attempt_log.all()
    assert (lost.number, lost.outcome, sent.number, sent.outcome) == (
        1,
        AttemptOutcome.CLAIM_EXPIRED,
        2,
        AttemptOutcome.SENT,
    )
    # The lost attempt started when *its* claim was taken, not when the retry took over.
    assert lost.started_at == claimed_at
    assert lost.finished_at is None  # nobody knows when that worker stopped
    assert lost.worker == lost_worker
    assert "same Message-ID" in lost.error
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.claimed_by == "" and message.claim_token is None


@pytest.mark.django_db
def test_claim_expired_attempt_keeps_the_lost_claims_start(contoso, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        message = _enqueue(contoso)
    first = (timezone.now() + timedelta(seconds=1)).replace(microsecond=0)
    assert outbox_claim(message_id=message.pk, now=first) is not None
    second = first + timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT + 30)
    assert outbox_claim(message_id=message.pk, now=second - timedelta(seconds=31)) is None  # still held
    assert outbox_claim(message_id=message.pk, now=second) is not None
    (attempt,) = message.attempt_log.all()
    assert attempt.outcome == AttemptOutcome.CLAIM_EXPIRED
    assert attempt.started_at == first
    message.refresh_from_db()
    assert message.claimed_at == second and message.attempts == 2


class OrderRecordingBackend(LocmemBackend):
    """Notes what the database says at each step of talking to the mail server."""

    events: list[tuple[str, str, int]] = []

    def _status(self) -> str:
        return OutboxMessage.objects.values_list("status", flat=True).get()

    def open(self) -> bool:
        self.events.append(("open", self._status(), len(connection.queries)))
        return super().open()

    def send_messages(self, messages: Any) -> int:
        sent = super().send_messages(messages)
        self.events.append(("accepted", "", len(connection.queries)))
        return sent

    def close(self) -> None:
        self.events.append(("quit", self._status(), len(connection.queries) - 1))  # minus _status's own query
        super().close()


@pytest.mark.django_db
def test_sent_is_committed_right_after_the_mail_server_accepts(contoso, settings, django_capture_on_commit_callbacks):
    """Between the server's OK and "sent" there is nothing but the one statement that records it;
    the connection is closed (SMTP QUIT) only after."""
    settings.EMAIL_BACKEND = f"{__name__}.OrderRecordingBackend"
    OrderRecordingBackend.events = []
    with django_capture_on_commit_callbacks(execute=False):
        message = _enqueue(contoso)
    with CaptureQueriesContext(connection):
        assert outbox_deliver(message_id=message.pk) == "sent"
    steps = [(name, status) for name, status, _ in OrderRecordingBackend.events]
    assert steps == [("open", MessageStatus.SENDING), ("accepted", ""), ("quit", MessageStatus.SENT)]
    accepted_at = OrderRecordingBackend.events[1][2]
    quit_at = OrderRecordingBackend.events[2][2]
    assert quit_at - accepted_at == 1
    (attempt,) = message.attempt_log.all()
    assert attempt.outcome == AttemptOutcome.SENT and attempt.number == 1 and attempt.worker


@pytest.mark.django_db
def test_a_stale_worker_reporting_late_does_not_mark_the_new_claims_message(
    contoso, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        message = _enqueue(contoso)
    stale = outbox_claim(message_id=message.pk)
    later = timezone.now() + timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT + 1)
    assert outbox_claim(message_id=message.pk, now=later) is not None
    services._record_sent(claim=stale, started=timezone.now(), worker="old")
    message.refresh_from_db()
    assert message.status == MessageStatus.SENDING
    assert not message.attempt_log.filter(outcome=AttemptOutcome.SENT).exists()


@pytest.mark.django_db
def test_staff_see_the_message_id(login, sdm, contoso, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = _enqueue(contoso)
    page = login(sdm).get(reverse("outbox:detail", args=[message.pk]))
    assert page.status_code == 200
    assert "Message-ID" in page.content.decode()
    assert message.rfc5322_message_id.replace("<", "&lt;").replace(">", "&gt;") in page.content.decode()


# --- A broker that doesn't answer ---------------------------------------------------


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Kicks go to a real Redis client aimed at a closed loopback port; yields the count of connection attempts."""
    from defender_portal.celery import app

    attempts: list[int] = []
    real = services._kick_connection

    def counting() -> Any:
        attempts.append(1)
        return real()

    services._drop_kick_connection()
    monkeypatch.setattr(services, "_kick_paused_until", 0.0)
    monkeypatch.setattr(services, "_kick_connection", counting)
    saved = app.conf.task_always_eager, app.conf.broker_write_url
    app.conf.task_always_eager, app.conf.broker_write_url = False, "redis://127.0.0.1:1/0"
    try:
        yield attempts
    finally:
        app.conf.task_always_eager, app.conf.broker_write_url = saved
        services._drop_kick_connection()


@pytest.mark.django_db(transaction=True)
def test_queuing_mail_with_the_broker_down_does_not_wait_for_it(contoso, broker_down):
    started = time.perf_counter()
    with transaction.atomic():
        rows = [_enqueue(contoso, f"n{i}") for i in range(10)]
    elapsed = time.perf_counter() - started
    # One try at the broker (it refuses at once); the other nine don't even ask.
    assert len(broker_down) == 1
    assert elapsed < 2.0, f"queuing 10 emails took {elapsed:.2f} s with the broker down"
    assert all(r.status == MessageStatus.PENDING for r in OutboxMessage.objects.all())
    assert mail.outbox == []
    # The sweep delivers them once workers run again.
    assert set(outbox_due_ids()) == {r.pk for r in rows}


@pytest.mark.django_db(transaction=True)
def test_after_a_broker_failure_requests_skip_it_for_a_while_then_try_again(contoso, broker_down, monkeypatch):
    with transaction.atomic():
        _enqueue(contoso)
    with transaction.atomic():
        _enqueue(contoso)
    assert len(broker_down) == 1
    later = time.monotonic() + services.KICK_PAUSE_AFTER_FAILURE + 1
    monkeypatch.setattr(services, "_clock", lambda: later)
    with transaction.atomic():
        _enqueue(contoso)
    assert len(broker_down) == 2


@pytest.mark.django_db(transaction=True)
def test_a_page_that_queues_mail_answers_with_the_broker_down(login, sdm, contoso, admin, secadmin, broker_down):
    """The onboarding console's invite queues a welcome email per admin; with Redis gone it still answers at once."""
    client = login(sdm)
    started = time.perf_counter()
    response = client.post(reverse("onboarding_provider:invite", args=[contoso.pk]))
    elapsed = time.perf_counter() - started
    assert response.status_code == 302
    assert OutboxMessage.objects.filter(kind="onboarding.welcome", status=MessageStatus.PENDING).exists()
    assert len(broker_down) == 1
    assert elapsed < 2.0
    assert dispatch_due.run.__name__  # the sweep task that will deliver it exists
