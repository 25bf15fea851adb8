"""Environment settings and licences: a stale edit that would change something is a 409 with the
admin's value kept in its row; a stale edit asking for what is already in place is a double submit."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from environment.models import Licence, SecuritySetting
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("htmx", [False, True])
def test_a_stale_seat_count_is_a_409_with_the_typed_count_kept(login, admin, contoso, htmx):
    factories.licence(contoso, "mde_p2", 20)  # another admin set 20 after this page showed 25
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = login(admin).post(
        reverse("environment:licences"), {"product": "mde_p2", "seats": "30", "expected": "25"}, **headers
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert 'value="30"' in html  # the admin's own count
    assert 'name="expected" value="20"' in html  # saving again applies it knowingly
    assert Licence.objects.get(tenant=contoso, product="mde_p2").seats == 20


def test_a_stale_seat_count_equal_to_the_current_one_is_a_double_submit(login, admin, contoso):
    factories.licence(contoso, "mde_p2", 30)
    client = login(admin)
    events = AuditEvent.objects.count()
    response = client.post(reverse("environment:licences"), {"product": "mde_p2", "seats": "30", "expected": "25"})
    assert response.status_code == 302
    assert AuditEvent.objects.count() == events


def test_a_stale_setting_is_a_409_and_the_same_value_again_is_a_double_submit(login, admin, contoso):
    factories.setting(contoso, "mde.edr_block_mode", "on")
    client = login(admin)
    url = reverse("environment:settings")
    conflict = client.post(url, {"key": "mde.edr_block_mode", "value": "off", "expected": "off"})
    assert conflict.status_code == 409
    assert SecuritySetting.objects.get(tenant=contoso, key="mde.edr_block_mode").value == "on"
    events = AuditEvent.objects.count()
    same = client.post(url, {"key": "mde.edr_block_mode", "value": "on", "expected": "off"})
    assert same.status_code == 302
    assert AuditEvent.objects.count() == events


# --- Deleting a directory user -------------------------------------------------------------------


def _delete_form_as_shown(client, user) -> dict[str, str]:
    """The fields of the delete confirmation, as the page rendered them."""
    import re

    html = client.get(reverse("environment:directory_user_delete", args=[user.pk])).content.decode()
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))


def test_a_delete_confirmed_before_the_user_changed_is_a_409_showing_the_user_as_now(login, admin, contoso):
    from environment import services
    from environment.models import DirectoryUser

    user = factories.directory_user(contoso, "Adele Vance")
    client = login(admin)
    shown = _delete_form_as_shown(client, user)
    assert shown["confirm"] == "yes" and shown["expected"]
    services.directory_user_set_enabled(tenant=contoso, acting_user=admin, directory_user=user, enabled=False)
    events = AuditEvent.objects.count()

    response = client.post(reverse("environment:directory_user_delete", args=[user.pk]), shown)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Adele Vance was changed since you opened this page, so nothing was deleted" in html
    assert "<dd>Disabled</dd>" in html  # what is there now
    assert DirectoryUser.objects.filter(pk=user.pk).exists()
    assert AuditEvent.objects.count() == events
    # Confirming again from this page deletes the user as it now is.
    again = _delete_form_as_shown(client, user)
    assert again["expected"] != shown["expected"]
    assert client.post(reverse("environment:directory_user_delete", args=[user.pk]), again).status_code == 302
    assert not DirectoryUser.objects.filter(pk=user.pk).exists()


def test_a_delete_sent_twice_is_harmless(login, admin, contoso):
    from environment.models import DirectoryUser

    user = factories.directory_user(contoso, "Alex Wilber")
    client = login(admin)
    shown = _delete_form_as_shown(client, user)
    url = reverse("environment:directory_user_delete", args=[user.pk])
    assert client.post(url, shown).status_code == 302
    assert not DirectoryUser.objects.filter(pk=user.pk).exists()
    events = AuditEvent.objects.count()
    second = client.post(url, shown)
    assert second.status_code == 302
    assert "already deleted" in client.get(second["Location"]).content.decode()
    assert AuditEvent.objects.count() == events


def test_deleting_an_id_this_tenant_never_had_is_still_a_404(login, admin, contoso, fabrikam):
    other = factories.directory_user(fabrikam, "Fabrikam User")
    client = login(admin)
    url = reverse("environment:directory_user_delete", args=[other.pk])
    assert client.post(url, {"confirm": "yes"}).status_code == 404
    assert (
        client.post(
            reverse("environment:directory_user_delete", args=[other.pk + 10_000]), {"confirm": "yes"}
        ).status_code
        == 404
    )


def test_a_delete_with_a_malformed_version_is_refused_as_stale(login, admin, contoso):
    from environment.models import DirectoryUser

    user = factories.directory_user(contoso, "Megan Bowen")
    client = login(admin)
    url = reverse("environment:directory_user_delete", args=[user.pk])
    response = client.post(url, {"confirm": "yes", "expected": "2020-01-01T00:00:00+00:00"})
    assert response.status_code == 409
    assert DirectoryUser.objects.filter(pk=user.pk).exists()
    # Garbage is not a version: the form is treated as carrying none (an old page), never a 500.
    assert client.post(url, {"confirm": "yes", "expected": "x\u00e9" * 30}).status_code in {302, 409}


# --- The device list's bulk actions ------------------------------------------------------------


def _devices_was(client) -> str:
    import re

    html = client.get(reverse("environment:devices")).content.decode()
    found = re.search(r'name="devices_was" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_onboard_this_many_sent_twice_onboards_one_batch_and_the_second_is_a_409(login, admin, contoso):
    from environment.models import Device, OnboardingState

    factories.devices(contoso, 5, onboarded=False)
    client = login(admin)
    form = {"action": "onboard_count", "count": "2", "devices_was": _devices_was(client)}
    assert client.post(reverse("environment:devices"), form).status_code == 302
    events = AuditEvent.objects.count()
    second = client.post(reverse("environment:devices"), form)
    assert second.status_code == 409
    html = second.content.decode()
    assert "The devices changed since you opened this page" in html
    assert 'id="bulk-count"' in html and 'value="2"' in html  # the typed number kept
    assert Device.objects.filter(tenant=contoso, onboarding_state=OnboardingState.ONBOARDED).count() == 2
    assert AuditEvent.objects.count() == events
    # Sending it again from the page now shown applies it knowingly.
    form["devices_was"] = _devices_was(client)
    assert client.post(reverse("environment:devices"), form).status_code == 302
    assert Device.objects.filter(tenant=contoso, onboarding_state=OnboardingState.ONBOARDED).count() == 4


def test_a_stale_all_matching_antivirus_switch_is_a_409(login, admin, secadmin, contoso):
    from environment import services
    from environment.models import AntivirusMode, Device

    devices = factories.devices(contoso, 3)
    client = login(admin)
    shown = _devices_was(client)
    services.devices_set_antivirus_mode(  # another admin, meanwhile
        tenant=contoso, acting_user=secadmin, mode=AntivirusMode.PASSIVE, device_ids=[devices[0].pk]
    )
    form = {"action": "av_matching", "mode": AntivirusMode.DISABLED, "devices_was": shown}
    response = client.post(reverse("environment:devices"), form)
    assert response.status_code == 409
    assert not Device.objects.filter(tenant=contoso, av_mode=AntivirusMode.DISABLED).exists()


def test_adding_the_same_directory_user_twice_is_harmless_and_a_different_one_is_refused(login, admin, contoso):
    from environment.models import DirectoryUser

    client = login(admin)
    form = {"display_name": "Nestor Wilke", "user_principal_name": "nestor@contoso.example", "mail": ""}
    url = reverse("environment:directory_user_create")
    assert client.post(url, form).status_code == 302
    events = AuditEvent.objects.count()
    assert client.post(url, form).status_code == 302  # the same form again
    assert DirectoryUser.objects.filter(tenant=contoso, user_principal_name="nestor@contoso.example").count() == 1
    assert AuditEvent.objects.count() == events
    other = client.post(url, {**form, "display_name": "Nestor W."})
    assert other.status_code == 400
    assert "already exists" in other.content.decode()
    assert DirectoryUser.objects.get(tenant=contoso, user_principal_name="nestor@contoso.example").display_name == (
        "Nestor Wilke"
    )
