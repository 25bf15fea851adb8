"""Tenant isolation across the portal: a Fabrikam administrator can neither see
nor change any of Contoso's objects, whatever URL or id they try. Every
attempt is a 404 (never a 403, which would confirm the object exists) and
nothing changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.models import NotificationContact, NotificationType
from contacts.services import contact_add
from environment.models import AntivirusMode, Device, DirectoryUser, DomainController
from permissions.models import AccessGrant
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def contoso_objects(contoso, admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        person = factories.directory_user(contoso, "Megan Bowen")
        contact = contact_add(
            tenant=contoso,
            acting_user=admin,
            notification_type=NotificationType.INCIDENT,
            directory_user_id=person.pk,
        )
        access_levels_set(
            tenant=contoso,
            acting_user=admin,
            investigate=True,
            respond=False,
            expected_version=access_levels_state(tenant=contoso).version,
            confirm_reduced_access=True,
        )
    return {
        "person": person,
        "contact": contact,
        "grant": AccessGrant.objects.get(tenant=contoso),
        "dc": factories.domain_controller(contoso, sensor=False),
        "device": factories.devices(contoso, 1, av_mode=AntivirusMode.PASSIVE)[0],
    }


def _attempts(objs):
    contact, person, dc, grant = objs["contact"], objs["person"], objs["dc"], objs["grant"]
    return [
        ("post", reverse("contacts:remove", args=[contact.pk]), {"version": contact.version, "confirm": "yes"}),
        ("post", reverse("contacts:move", args=[contact.pk]), {"version": contact.version, "direction": "down"}),
        ("post", reverse("contacts:phone", args=[contact.pk]), {"version": contact.version, "phone": "+14255550100"}),
        ("post", reverse("contacts:send_test", args=[contact.pk]), {}),
        ("post", reverse("contacts:retry_email", args=[contact.pk]), {}),
        ("post", reverse("permissions:renew", args=[grant.pk]), {"duration": "90"}),
        ("post", reverse("environment:domain_controller_sensor", args=[dc.pk]), {"action": "install"}),
        ("post", reverse("environment:directory_user_enabled", args=[person.pk]), {"enabled": "0"}),
        ("get", reverse("environment:directory_user_delete", args=[person.pk]), {}),
        ("post", reverse("environment:directory_user_delete", args=[person.pk]), {"confirm": "yes"}),
        (
            "post",
            reverse("environment:devices"),
            {"action": "av_selected", "mode": AntivirusMode.ACTIVE, "device": objs["device"].pk},
        ),
    ]


def test_another_tenants_admin_gets_404_everywhere_and_changes_nothing(login, outsider, contoso_objects):
    client = login(outsider)
    for method, url, data in _attempts(contoso_objects):
        response = getattr(client, method)(url, data)
        assert response.status_code == 404, (method, url, response.status_code)
    contact = NotificationContact.objects.get(pk=contoso_objects["contact"].pk)
    assert contact.removed_at is None and contact.phone == ""
    assert DirectoryUser.objects.get(pk=contoso_objects["person"].pk).enabled
    assert not DomainController.objects.get(pk=contoso_objects["dc"].pk).sensor_installed
    assert Device.objects.get(pk=contoso_objects["device"].pk).av_mode == AntivirusMode.PASSIVE
    grant = AccessGrant.objects.get(pk=contoso_objects["grant"].pk)
    assert grant.ends_at == contoso_objects["grant"].ends_at


def test_the_same_requests_work_for_contosos_admin(login, admin, contoso_objects):
    """Guards the test above: the URLs and payloads are real, so 404 means isolation."""
    client = login(admin)
    dc = contoso_objects["dc"]
    response = client.post(reverse("environment:domain_controller_sensor", args=[dc.pk]), {"action": "install"})
    assert response.status_code in (200, 302)
    assert DomainController.objects.get(pk=dc.pk).sensor_installed
    contact = contoso_objects["contact"]
    response = client.post(
        reverse("contacts:phone", args=[contact.pk]), {"version": contact.version, "phone": "+14255550100"}
    )
    assert response.status_code in (200, 302)
    assert NotificationContact.objects.get(pk=contact.pk).phone == "+14255550100"
    response = client.post(
        reverse("environment:devices"),
        {"action": "av_selected", "mode": AntivirusMode.ACTIVE, "device": contoso_objects["device"].pk},
    )
    assert response.status_code in (200, 302)
    assert Device.objects.get(pk=contoso_objects["device"].pk).av_mode == AntivirusMode.ACTIVE
    response = client.get(reverse("environment:directory_user_delete", args=[contoso_objects["person"].pk]))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "url_name",
    [
        "onboarding:index",
        "permissions:index",
        "contacts:index",
        "readiness:service_status",
        "audit:log",
        "environment:overview",
        "environment:devices",
        "environment:directory",
        "environment:domain_controllers",
    ],
)
def test_pages_show_only_the_members_own_tenant(login, outsider, contoso_objects, url_name):
    client = login(outsider)
    response = client.get(reverse(url_name), follow=True)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Fabrikam" in body
    for needle in ("Contoso", "Megan Bowen", contoso_objects["dc"].name, contoso_objects["device"].name):
        assert needle not in body, f"{url_name} shows {needle!r} to a Fabrikam user"


def test_directory_search_never_returns_another_tenants_entries(login, outsider, contoso_objects):
    client = login(outsider)
    response = client.get(reverse("contacts:search"), {"q": "Megan", "notification_type": "incident"})
    assert response.status_code == 200
    assert "Megan Bowen" not in response.content.decode()
