"""No contacts edit is lost silently: a stale change is a 409 with the current list and the admin's
own input kept; a resubmit that changes nothing is a double submit."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from contacts.models import NotificationContact, NotificationType
from contacts.services import contact_add, contact_set_phone
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(contoso):
    return factories.directory_user(contoso, "Alice Martin", mail="alice@contoso.example")


@pytest.fixture
def bob(contoso):
    return factories.directory_user(contoso, "Bob Stone", mail="bob@contoso.example")


def _add(tenant, actor, user):
    return contact_add(
        tenant=tenant, acting_user=actor, notification_type=NotificationType.INCIDENT, directory_user_id=user.pk
    )


@pytest.mark.parametrize("htmx", [False, True])
def test_a_stale_phone_is_a_409_with_the_typed_number_kept(login, admin, secadmin, contoso, alice, htmx):
    contact = _add(contoso, admin, alice)
    contact_set_phone(tenant=contoso, acting_user=secadmin, contact=contact, phone="+14255550100", expected_version=1)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = login(admin).post(
        reverse("contacts:phone", args=[contact.pk]), {"phone": "+44 20 7946 0958", "version": 1}, **headers
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "changed by someone else" in html and "Current phone number: +1 425 555 0100" in html
    assert 'value="+44 20 7946 0958"' in html  # the admin's own input
    contact.refresh_from_db()
    assert contact.phone == "+14255550100"


def test_a_stale_phone_asking_for_the_number_it_has_is_a_double_submit(login, admin, contoso, alice):
    contact = _add(contoso, admin, alice)
    client = login(admin)
    data = {"phone": "+14255550100", "version": 1}
    assert client.post(reverse("contacts:phone", args=[contact.pk]), data).status_code == 302
    events = AuditEvent.objects.count()
    second = client.post(reverse("contacts:phone", args=[contact.pk]), data)  # the same form again
    assert second.status_code == 302
    assert AuditEvent.objects.count() == events


def test_a_double_submitted_remove_is_not_a_conflict(login, admin, contoso, alice):
    contact = _add(contoso, admin, alice)
    client = login(admin)
    # The only incident contact: removing it is confirmed knowing nobody is left (before Monitoring).
    data = {"version": 1, "confirm": "yes", "confirm_last": "yes"}
    assert client.post(reverse("contacts:remove", args=[contact.pk]), data).status_code == 302
    events = AuditEvent.objects.count()
    assert client.post(reverse("contacts:remove", args=[contact.pk]), data).status_code == 302
    assert AuditEvent.objects.count() == events


def test_a_stale_remove_after_another_change_is_a_409(login, admin, secadmin, contoso, alice):
    contact = _add(contoso, admin, alice)
    contact_set_phone(tenant=contoso, acting_user=secadmin, contact=contact, phone="+14255550100", expected_version=1)
    response = login(admin).post(reverse("contacts:remove", args=[contact.pk]), {"version": 1, "confirm": "yes"})
    assert response.status_code == 409
    assert NotificationContact.objects.active().count() == 1


def test_a_stale_reorder_is_a_409(login, admin, contoso, alice, bob):
    a, b = _add(contoso, admin, alice), _add(contoso, admin, bob)
    client = login(admin)
    data = {"direction": "up", "version": 1, "neighbour": a.pk}
    assert client.post(reverse("contacts:move", args=[b.pk]), data).status_code == 302
    replay = client.post(reverse("contacts:move", args=[b.pk]), data)
    assert replay.status_code == 409
    order = list(NotificationContact.objects.active().order_by("position").values_list("display_name", flat=True))
    assert order == ["Bob Stone", "Alice Martin"]
