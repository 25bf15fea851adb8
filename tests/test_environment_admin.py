"""Provider staff change the environment in the Django admin, through the services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from demo.seed import seed_demo
from environment.models import AntivirusMode, Device, DirectoryUser, DomainController, Licence, OnboardingState
from tenancy.models import User
from tests import factories

pytestmark = pytest.mark.django_db


def _action(client, model: str, action: str, ids: list[int]):
    return client.post(
        reverse(f"admin:environment_{model}_changelist"), {"action": action, "_selected_action": [str(i) for i in ids]}
    )


def test_onboard_and_av_mode_actions_use_the_services(admin_client, admin_user, contoso, fabrikam):
    ours = factories.devices(contoso, 3, onboarded=False, av_mode=AntivirusMode.PASSIVE)
    theirs = factories.devices(fabrikam, 2, onboarded=False)
    response = _action(admin_client, "device", "onboard", [d.pk for d in ours + theirs])
    assert response.status_code == 302
    assert not Device.objects.filter(onboarding_state=OnboardingState.NOT_ONBOARDED).exists()
    # One audited change per tenant, by the staff member.
    events = AuditEvent.objects.filter(action="environment.devices_onboarded")
    assert sorted(e.tenant.name for e in events) == ["Contoso", "Fabrikam"]
    assert all(e.actor == admin_user for e in events)
    _action(admin_client, "device", "set_active", [d.pk for d in ours])
    assert not Device.objects.filter(av_mode=AntivirusMode.PASSIVE).exists()
    assert AuditEvent.objects.filter(action="environment.devices_antivirus_mode_set", tenant=contoso).count() == 1


def test_sensor_user_and_licence_changes(admin_client, contoso):
    dc = factories.domain_controller(contoso)
    _action(admin_client, "domaincontroller", "install_sensor", [dc.pk])
    assert DomainController.objects.get(pk=dc.pk).sensor_installed
    users = [factories.directory_user(contoso) for _ in range(2)]
    _action(admin_client, "directoryuser", "disable", [u.pk for u in users])
    assert DirectoryUser.objects.filter(enabled=False).count() == 2
    lic = factories.licence(contoso, "mdi", 10)
    response = admin_client.post(reverse("admin:environment_licence_change", args=[lic.pk]), {"seats": "75"})
    assert response.status_code == 302
    assert Licence.objects.get(pk=lic.pk).seats == 75
    assert AuditEvent.objects.filter(action="environment.licence_seats_set").count() == 1


def test_security_setting_admin_validates_values(admin_client, contoso):
    url = reverse("admin:environment_securitysetting_add")
    response = admin_client.post(url, {"tenant": contoso.pk, "key": "mde.tamper_protection", "value": "maybe"})
    assert response.status_code == 200 and b"Choose one of: on, off." in response.content
    response = admin_client.post(url, {"tenant": contoso.pk, "key": "mde.tamper_protection", "value": "on"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="environment.security_setting_set").count() == 1


def test_changelists_render(admin_client, contoso):
    factories.devices(contoso, 3)
    for model in [
        "device",
        "devicegroup",
        "domaincontroller",
        "directoryuser",
        "directorygroup",
        "licence",
        "securitysetting",
    ]:
        assert admin_client.get(reverse(f"admin:environment_{model}_changelist")).status_code == 200, model


def test_seeded_sdm_is_refused_the_admin(client, settings):
    """Provider staff work in the provider area; the Django admin is for operators."""
    seed_demo(seed=42, devices=50, reset=False)
    sdm = User.objects.get(email="sdm@experts.example")
    assert sdm.check_password(settings.DEMO_PASSWORD) and not sdm.is_superuser
    client.force_login(sdm)
    device = Device.objects.filter(onboarding_state=OnboardingState.NOT_ONBOARDED).first()
    assert client.get(reverse("admin:environment_device_changelist"), follow=True).status_code == 403
    response = _action(client, "device", "onboard", [device.pk])
    assert response.status_code == 302 and client.get(response["Location"]).status_code == 403
    assert Device.objects.get(pk=device.pk).onboarding_state == OnboardingState.NOT_ONBOARDED
