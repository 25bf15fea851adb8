"""``manage.py environment``: scripting the emulated environment as the system."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from environment.models import AntivirusMode, Device, DomainController, Licence, OnboardingState, SecuritySetting
from tests import factories

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("environment", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def env(contoso):
    servers = factories.device_group(contoso, "Datacenter servers")
    factories.devices(contoso, 5, group=servers, onboarded=False, prefix="srv")
    factories.devices(contoso, 3, group=servers, av_mode=AntivirusMode.PASSIVE, prefix="srvp")
    factories.devices(contoso, 4, onboarded=False, prefix="lt")
    factories.domain_controller(contoso, "CTS-DC03.corp.contoso.example")
    return servers


def test_onboard_a_group_by_name(env):
    assert "Onboarded 5 devices." in run("--tenant", "contoso.example", "onboard", "--group", "datacenter servers")
    assert Device.objects.filter(device_group=env, onboarding_state=OnboardingState.NOT_ONBOARDED).count() == 0
    event = AuditEvent.objects.get(action="environment.devices_onboarded")
    assert event.actor is None and event.actor_label == "system"


def test_onboard_count_and_named_devices(env):
    assert "Onboarded 2 devices." in run("--tenant", "Contoso", "onboard", "--count", "2")
    assert "Onboarded 1 device." in run("--tenant", "contoso.example", "onboard", "--device", "lt-000003")
    assert Device.objects.get(name="lt-000003").onboarding_state == OnboardingState.ONBOARDED


def test_av_mode_from_passive_in_a_group_and_all(env):
    out = run("--tenant", "contoso.example", "av-mode", "active", "--group", "Datacenter servers", "--from", "passive")
    assert "on 3 devices" in out
    assert not Device.objects.filter(av_mode=AntivirusMode.PASSIVE).exists()
    assert "on 12 devices" in run("--tenant", "contoso.example", "av-mode", "disabled", "--all")


def test_install_sensor_by_host_name_and_settings_and_licences(env, contoso):
    assert "Sensor installed on CTS-DC03.corp.contoso.example" in run(
        "--tenant", "contoso.example", "install-sensor", "CTS-DC03"
    )
    assert DomainController.objects.get().sensor_installed
    run("--tenant", "contoso.example", "set-setting", "mde.edr_block_mode", "on")
    assert SecuritySetting.objects.get(tenant=contoso, key="mde.edr_block_mode").value == "on"
    run("--tenant", "contoso.example", "set-licence", "mdi", "400")
    assert Licence.objects.get(tenant=contoso, product="mdi").seats == 400
    out = run("--tenant", "contoso.example", "show")
    assert "Devices: 12 total" in out and "mdi: 400 seats" in out and "mde.edr_block_mode = on" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nowhere.example", "show"], "No tenant"),
        (["--tenant", "contoso.example", "onboard"], "Choose devices"),
        (["--tenant", "contoso.example", "onboard", "--group", "Nope"], "has no device group"),
        (["--tenant", "contoso.example", "onboard", "--device", "ghost"], "no device named: ghost"),
        (["--tenant", "contoso.example", "av-mode", "active"], "Choose devices"),
        (["--tenant", "contoso.example", "av-mode", "active", "--all", "--from", "passive"], "on its own"),
        (["--tenant", "contoso.example", "install-sensor", "DC99"], "has no domain controller"),
        (["--tenant", "contoso.example", "set-setting", "mde.nope", "on"], "isn't a known security setting"),
        (["--tenant", "contoso.example", "set-setting", "mde.tamper_protection", "maybe"], "isn't a valid value"),
        (["--tenant", "contoso.example", "set-licence", "mdi", "-1"], "from 0 to 1,000,000"),
    ],
)
def test_bad_input_is_a_clear_command_error(env, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("environment", *args, stdout=StringIO())


def test_installing_twice_is_a_command_error(env):
    run("--tenant", "contoso.example", "install-sensor", "CTS-DC03")
    with pytest.raises(CommandError, match="already has a sensor"):
        run("--tenant", "contoso.example", "install-sensor", "CTS-DC03")
