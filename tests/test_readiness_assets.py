"""Protected assets add up: every headline is the sum of the reasons under it, and each reason opens a
list as long as its number, on the customer's page and the provider's."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from environment.models import AntivirusMode, Device, DeviceTally, LicenceProduct
from readiness.models import NOT_PRESENT, ReadinessState, RefreshRun
from readiness.services import readiness_state_for, readiness_sweep
from tenancy.models import Tenant
from tests import factories

URL = "/settings/defender-experts/service-status/"


def refresh(tenant: Tenant) -> ReadinessState:
    readiness_state_for(tenant=tenant)
    ReadinessState.objects.filter(tenant=tenant).update(next_refresh_at=timezone.now())
    readiness_sweep()
    return ReadinessState.objects.get(tenant=tenant)


@pytest.fixture
def short_of_licences(contoso: Tenant) -> ReadinessState:
    """Fewer devices and identities than licences, some of each unprotected for every reason."""
    factories.devices(contoso, 12)
    factories.devices(contoso, 5, onboarded=False)
    factories.devices(contoso, 4, av_mode=AntivirusMode.PASSIVE)
    factories.devices(contoso, 3, av_mode=AntivirusMode.DISABLED)
    factories.licence(contoso, LicenceProduct.DEFENDER_ENDPOINT_P2, seats=40)
    with_sensor = factories.domain_controller(contoso, sensor=True)
    without = factories.domain_controller(contoso, sensor=False)
    for _ in range(6):
        factories.directory_user(contoso, domain_controller=with_sensor)
    for _ in range(3):
        factories.directory_user(contoso, domain_controller=without)
    factories.directory_user(contoso)  # cloud-only: not an identity Defender for Identity protects
    factories.licence(contoso, LicenceProduct.DEFENDER_IDENTITY, seats=15)
    return refresh(contoso)


def test_devices_still_to_protect_is_the_target_minus_the_protected_split_by_reason(
    short_of_licences: ReadinessState,
) -> None:
    devices = short_of_licences.device_breakdown
    assert (devices.protected, devices.target) == (12, 40)
    assert devices.to_protect == 40 - 12
    reasons = {r.key: r.count for r in devices.reasons}
    # The licences with no device behind them yet are a reason too: without them this summed to 12.
    assert reasons == {"not_onboarded": 5, "passive": 4, "disabled": 3, NOT_PRESENT: 40 - 24}
    assert sum(reasons.values()) == devices.to_protect


def test_identities_still_to_protect_are_listed_under_their_headline(short_of_licences: ReadinessState) -> None:
    identities = short_of_licences.identity_breakdown
    assert (identities.protected, identities.target) == (6, 15)
    reasons = {r.key: r.count for r in identities.reasons}
    assert reasons == {"no_sensor": 3, NOT_PRESENT: 15 - 9}
    assert identities.to_protect == sum(reasons.values()) == 15 - 6


def test_more_devices_than_licences_still_counts_every_unprotected_device(contoso: Tenant) -> None:
    factories.devices(contoso, 8)
    factories.devices(contoso, 6, onboarded=False)
    factories.licence(contoso, LicenceProduct.DEFENDER_ENDPOINT_P2, seats=10)
    devices = refresh(contoso).device_breakdown
    assert devices.to_protect == 6 == sum(r.count for r in devices.reasons)
    assert {r.key: r.count for r in devices.reasons}[NOT_PRESENT] == 0


def test_one_definition_of_protected_for_devices_and_the_tally(contoso: Tenant) -> None:
    factories.devices(contoso, 3)
    factories.devices(contoso, 2, av_mode=AntivirusMode.PASSIVE)
    factories.devices(contoso, 2, onboarded=False)  # not onboarded, antivirus active: not protected
    assert Device.objects.filter(tenant=contoso).protected().count() == 3
    tally = DeviceTally.objects.filter(tenant=contoso)
    assert sum(tally.protected().values_list("devices", flat=True)) == 3
    flags = dict(Device.objects.filter(tenant=contoso).with_protection().values_list("name", "is_protected"))
    assert sum(flags.values()) == 3 and len(flags) == 7


def _number(html: str, testid: str) -> int:
    match = re.search(rf'data-testid="{testid}">([\d,]+)<', html)
    assert match, testid
    return int(match.group(1).replace(",", ""))


def test_every_reason_on_the_page_adds_up_and_opens_its_list(
    login: Any, admin: Any, short_of_licences: ReadinessState
) -> None:
    client = login(admin)
    html = client.get(URL).content.decode()
    for noun, list_name, reasons in (
        ("devices", "readiness:devices", ("not_onboarded", "passive", "disabled")),
        ("identities", "readiness:identities", ("no_sensor",)),
    ):
        headline = _number(html, f"{noun}-to-protect")
        shown = {key: _number(html, f"{noun}-{key}") for key in (*reasons, NOT_PRESENT)}
        assert sum(shown.values()) == headline, noun
        assert headline == _number(html, f"{noun}-target") - _number(html, f"{noun}-protected")
        for key in reasons:
            assert f'href="{reverse(list_name, args=[key])}"' in html
            response = client.get(reverse(list_name, args=[key]))
            assert response.context["count"] == shown[key], (noun, key)


def test_provider_runs_count_against_the_customers_target(
    login: Any, sdm: Any, short_of_licences: ReadinessState
) -> None:
    run = RefreshRun.objects.filter(tenant=short_of_licences.tenant).latest("started_at")
    assert (run.devices_target, run.identities_target) == (40, 15)
    html = login(sdm).get(reverse("readiness_provider:runs")).content.decode()
    assert 'data-testid="run-devices">12 of 40<' in html
    assert 'data-testid="run-identities">6 of 15<' in html


def test_no_set_to_active_mode_for_devices_already_active(
    login: Any, admin: Any, short_of_licences: ReadinessState
) -> None:
    client = login(admin)
    protected = client.get(reverse("readiness:devices", args=["protected"])).content.decode()
    assert "Set to active mode" not in protected
    assert protected.count('data-testid="no-fix"') == 12
    passive = client.get(reverse("readiness:devices", args=["passive"])).content.decode()
    assert passive.count("Set to active mode<span") == 4
    everything = client.get(reverse("readiness:devices", args=["unprotected"])).content.decode()
    assert 'data-testid="no-fix"' not in everything


def test_the_csv_has_the_same_breakdown_as_the_page(login: Any, admin: Any, short_of_licences: ReadinessState) -> None:
    import csv
    import io

    client = login(admin)
    html = client.get(URL).content.decode()
    rows = list(csv.reader(io.StringIO(client.get(reverse("readiness:export")).content.decode())))
    assets = {r[1]: r for r in rows if r[0] == "Protected assets"}
    for noun in ("devices", "identities"):
        headline = assets[f"Protected {noun}"]
        assert int(headline[7]) == _number(html, f"{noun}-protected")
        assert int(headline[8]) == _number(html, f"{noun}-target")
        assert int(headline[9]) == _number(html, f"{noun}-to-protect")
        reasons = [r for title, r in assets.items() if title.startswith(f"{noun.capitalize()} still to protect: ")]
        assert reasons and sum(int(r[9]) for r in reasons) == int(headline[9])
