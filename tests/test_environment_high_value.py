"""High-value devices and users, and security groups with members, under Environment: the tags
the optional "exclude all high-value devices and users" exclusion reads."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from core.errors import Invalid
from environment.models import Device, DirectoryGroup, DirectoryUser
from environment.services import devices_set_high_value, directory_group_create, directory_user_set_high_value
from tests import factories

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_tagging_devices_is_one_update_scoped_to_the_tenant_and_audited(contoso, fabrikam, admin):
    ours = factories.devices(contoso, 3)
    theirs = factories.devices(fabrikam, 1)
    n = devices_set_high_value(
        tenant=contoso, acting_user=admin, device_ids=[d.pk for d in ours[:2]] + [theirs[0].pk], high_value=True
    )
    assert n == 2
    assert set(Device.objects.filter(high_value=True).values_list("pk", flat=True)) == {ours[0].pk, ours[1].pk}
    # Again: nothing changes, nothing is logged.
    assert devices_set_high_value(tenant=contoso, acting_user=admin, device_ids=[ours[0].pk], high_value=True) == 0
    ev = AuditEvent.objects.get(action="environment.devices_high_value_set")
    assert ev.tenant == contoso and ev.after["devices"] == 2 and ev.summary == "Tagged 2 devices as high value"
    assert devices_set_high_value(tenant=contoso, acting_user=admin, device_ids=[ours[0].pk], high_value=False) == 1
    assert AuditEvent.objects.filter(action="environment.devices_high_value_cleared").count() == 1
    with pytest.raises(Invalid):
        devices_set_high_value(tenant=contoso, acting_user=admin, device_ids=[], high_value=True)


def test_tagging_a_user_is_audited_and_another_tenants_user_is_refused(contoso, fabrikam, admin):
    user = factories.directory_user(contoso, "Sam")
    directory_user_set_high_value(tenant=contoso, acting_user=admin, directory_user=user, high_value=True)
    assert DirectoryUser.objects.get(pk=user.pk).high_value
    assert AuditEvent.objects.filter(action="environment.directory_user_high_value_set", tenant=contoso).count() == 1
    with pytest.raises(Invalid):
        directory_user_set_high_value(tenant=fabrikam, acting_user=admin, directory_user=user, high_value=False)
    assert DirectoryUser.objects.get(pk=user.pk).high_value


def test_a_security_group_is_created_with_members_named_by_principal_name(contoso, fabrikam, admin):
    a = factories.directory_user(contoso, "Ann")
    b = factories.directory_user(contoso, "Bob")
    other = factories.directory_user(fabrikam, "Fay")
    group = directory_group_create(
        tenant=contoso,
        acting_user=admin,
        display_name="VIPs",
        security_enabled=True,
        member_upns=[a.user_principal_name.upper(), b.user_principal_name],
    )
    assert set(group.members.values_list("pk", flat=True)) == {a.pk, b.pk}
    with pytest.raises(Invalid) as info:
        directory_group_create(
            tenant=contoso, acting_user=admin, display_name="Others", member_upns=[other.user_principal_name]
        )
    assert "No user in this organisation's directory" in str(info.value)
    assert not DirectoryGroup.objects.filter(display_name="Others").exists()


def test_the_devices_page_tags_selected_devices_plainly_and_with_htmx(login, admin, contoso):
    devices = factories.devices(contoso, 2, prefix="ceo")
    client = login(admin)
    url = reverse("environment:devices")
    response = client.post(url, {"action": "high_value_selected", "device": [devices[0].pk]})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Tagged 1 device as high value." in page and 'data-testid="high-value"' in page
    response = client.post(url, {"action": "high_value_clear_selected", "device": [devices[0].pk]}, **HTMX)
    assert response.status_code == 200 and "Removed the high-value tag from 1 device." in response.content.decode()
    assert not Device.objects.filter(high_value=True).exists()
    # Nothing selected: the form says so, nothing changes.
    response = client.post(url, {"action": "high_value_selected"})
    assert response.status_code == 400 and "Select at least one device first." in response.content.decode()


def test_the_directory_tags_a_user_plainly_and_with_htmx(login, admin, contoso):
    user = factories.directory_user(contoso, "Sam")
    client = login(admin)
    url = reverse("environment:directory_user_high_value", args=[user.pk])
    response = client.post(url, {"high_value": "true", "q": "sam"})
    assert response.status_code == 302 and "q=sam" in response["Location"]
    assert DirectoryUser.objects.get(pk=user.pk).high_value
    response = client.post(url, {"high_value": "false"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith("<tr") and "no longer tagged as high value" in body
    response = client.post(url, {"high_value": "maybe"})
    assert response.status_code == 302 and not DirectoryUser.objects.get(pk=user.pk).high_value


def test_the_directory_creates_a_group_with_members(login, admin, contoso):
    ann = factories.directory_user(contoso, "Ann")
    client = login(admin)
    response = client.post(
        reverse("environment:directory_group_create"),
        {"display_name": "VIPs", "security_enabled": "on", "members": f"{ann.user_principal_name}\n"},
    )
    assert response.status_code == 302
    assert list(DirectoryGroup.objects.get(display_name="VIPs").members.all()) == [ann]
    response = client.post(
        reverse("environment:directory_group_create"),
        {"display_name": "Ghosts", "security_enabled": "on", "members": "ghost@contoso.example"},
    )
    assert response.status_code == 400 and "ghost@contoso.example" in response.content.decode()
