"""Retrying a failed email from the provider's Outbox: audited in the tenant's log; a retry sent twice changes
nothing; a retry read before the message failed again is a 409 showing its latest error."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from outbox.models import MessageStatus, OutboxMessage
from outbox.services import outbox_enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(contoso, django_capture_on_commit_callbacks) -> OutboxMessage:
    with django_capture_on_commit_callbacks(execute=False):
        message = outbox_enqueue(
            tenant=contoso,
            kind="test.hello",
            to=["someone@contoso.example"],
            subject="Hello",
            template="emails/test/hello",
            context={"name": "Avery"},
        )
    OutboxMessage.objects.filter(pk=message.pk).update(status=MessageStatus.FAILED, attempts=3, last_error="550 first")
    message.refresh_from_db()
    return message


def _form_as_shown(client, message) -> dict[str, str]:
    html = client.get(reverse("outbox:detail", args=[message.pk])).content.decode()
    html = html[html.index(f'action="{reverse("outbox:retry", args=[message.pk])}"') :]
    html = html[: html.index("</form>")].replace('name="csrfmiddlewaretoken"', "")
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))


def test_a_retry_is_audited_in_the_messages_tenant_log(login, sdm, contoso, failed, django_capture_on_commit_callbacks):
    client = login(sdm)
    shown = _form_as_shown(client, failed)
    assert shown == {"attempts": "3"}
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("outbox:retry", args=[failed.pk]), shown)
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == MessageStatus.PENDING
    event = AuditEvent.objects.get(action="outbox.message_retried")
    assert event.tenant_id == contoso.pk and event.actor_id == sdm.pk
    assert event.target_id == str(failed.pk) and event.before["last_error"] == "550 first"


def test_a_retry_sent_twice_changes_nothing(login, sdm, failed, django_capture_on_commit_callbacks):
    client = login(sdm)
    shown = _form_as_shown(client, failed)
    url = reverse("outbox:retry", args=[failed.pk])
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(url, shown).status_code == 302
    events = AuditEvent.objects.count()
    second = client.post(url, shown)
    assert second.status_code == 302
    assert "Nothing changed" in client.get(second["Location"]).content.decode()
    assert AuditEvent.objects.count() == events


def test_a_retry_read_before_the_message_failed_again_is_a_409(login, sdm, failed):
    client = login(sdm)
    shown = _form_as_shown(client, failed)
    # Someone else retried it meanwhile, and it failed again with another error.
    OutboxMessage.objects.filter(pk=failed.pk).update(attempts=6, last_error="421 second")
    events = AuditEvent.objects.count()
    response = client.post(reverse("outbox:retry", args=[failed.pk]), shown)
    assert response.status_code == 409
    html = response.content.decode()
    assert "failed again since you opened this page" in html
    assert "421 second" in html and 'name="attempts" value="6"' in html
    failed.refresh_from_db()
    assert failed.status == MessageStatus.FAILED
    assert AuditEvent.objects.count() == events


def test_retrying_another_providers_or_a_malformed_message_is_a_404(login, sdm, failed):
    client = login(sdm)
    assert client.post(reverse("outbox:retry", args=[failed.pk + 1000]), {"attempts": "3"}).status_code == 404
    assert client.post(f"/provider/outbox/{'9' * 25}/retry/", {"attempts": "3"}).status_code == 404
