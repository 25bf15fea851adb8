"""Property tests: random environments (devices in random groups, onboarding states, antivirus modes,
licence counts, sensors, users, the experts' access), then a refresh, then the invariants:

* every breakdown sums to its headline;
* every drill-down list's length equals its number;
* the customer's and the provider's figures are equal;
* the CSV equals the page;
* access health is red whenever the experts reach none of the devices.

Small for CI (the "ci" profile in tests/conftest.py); ``pytest --hypothesis-profile=long`` for many more.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from environment.models import DEVICE_GAPS, IDENTITY_GAPS, AntivirusMode, Device, DirectoryUser, LicenceProduct
from permissions.evaluator import device_reach
from permissions.selectors import access_health, access_levels_state, access_snapshot, device_scope
from permissions.services import access_levels_set, all_devices_set
from readiness.models import NOT_PRESENT, ReadinessState, RefreshRun
from readiness.selectors import readiness_summaries
from readiness.services import readiness_state_for, readiness_sweep
from tenancy.models import Tenant, TenantRole, User
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/settings/defender-experts/service-status/"


@dataclass(frozen=True)
class Environment:
    groups: int
    # (group index or None, onboarded, antivirus mode, how many)
    devices: list[tuple[int | None, bool, str, int]]
    device_seats: int
    identity_seats: int
    sensors: list[bool]  # one domain controller each
    # (domain controller index or None for a cloud-only account, enabled)
    users: list[tuple[int | None, bool]]
    access: bool
    all_devices: bool


@st.composite
def environments(draw: Any) -> Environment:
    groups = draw(st.integers(0, 3))
    group = st.one_of(st.none(), st.integers(0, groups - 1)) if groups else st.none()
    sensors = draw(st.lists(st.booleans(), max_size=3))
    dc = st.one_of(st.none(), st.integers(0, len(sensors) - 1)) if sensors else st.none()
    return Environment(
        groups=groups,
        devices=draw(
            st.lists(
                st.tuples(group, st.booleans(), st.sampled_from(AntivirusMode.values), st.integers(1, 6)),
                min_size=1,
                max_size=6,
            )
        ),
        device_seats=draw(st.integers(0, 40)),
        identity_seats=draw(st.integers(0, 15)),
        sensors=sensors,
        users=draw(st.lists(st.tuples(dc, st.booleans()), max_size=10)),
        access=draw(st.booleans()),
        all_devices=draw(st.booleans()),
    )


def build(env: Environment) -> tuple[Tenant, User]:
    tenant = factories.tenant("Random")
    admin = factories.member(tenant, TenantRole.GLOBAL_ADMINISTRATOR)
    groups = [factories.device_group(tenant) for _ in range(env.groups)]
    for g, onboarded, mode, n in env.devices:
        factories.devices(tenant, n, group=groups[g] if g is not None else None, onboarded=onboarded, av_mode=mode)
    factories.licence(tenant, LicenceProduct.DEFENDER_ENDPOINT_P2, seats=env.device_seats)
    factories.licence(tenant, LicenceProduct.DEFENDER_IDENTITY, seats=env.identity_seats)
    dcs = [factories.domain_controller(tenant, sensor=sensor) for sensor in env.sensors]
    for d, enabled in env.users:
        factories.directory_user(tenant, domain_controller=dcs[d] if d is not None else None, enabled=enabled)
    if env.access:
        state = access_levels_state(tenant=tenant)
        access_levels_set(
            tenant=tenant, acting_user=admin, investigate=True, respond=False, expected_version=state.version
        )
    if not env.all_devices:
        state = access_levels_state(tenant=tenant)
        all_devices_set(tenant=tenant, acting_user=admin, enabled=False, expected_version=state.version, confirm=True)
    readiness_state_for(tenant=tenant)
    ReadinessState.objects.filter(tenant=tenant).update(next_refresh_at=timezone.now())
    readiness_sweep()
    return tenant, admin


def number(html: str, testid: str) -> int:
    match = re.search(rf'data-testid="{re.escape(testid)}">([\d,]+)<', html)
    assert match, testid
    return int(match.group(1).replace(",", ""))


class Rollback(Exception):
    """Ends an example's transaction: each generated environment starts from an empty database."""


@given(env=environments())
def test_every_figure_adds_up_everywhere(client: Client, sdm: User, env: Environment) -> None:
    try:
        with transaction.atomic():
            check(client, sdm, env)
            raise Rollback
    except Rollback:
        pass


def check(client: Client, sdm: User, env: Environment) -> None:
    tenant, admin = build(env)
    state = ReadinessState.objects.get(tenant=tenant)
    assert state.has_refreshed
    devices, identities = state.device_breakdown, state.identity_breakdown

    # Every breakdown sums to its headline, and the headline is the target minus the protected
    # whenever the assets don't outnumber the licences.
    for breakdown, real_total in (
        (devices, Device.objects.filter(tenant=tenant).count()),
        (identities, DirectoryUser.objects.filter(tenant=tenant).identities().count()),
    ):
        assert breakdown.to_protect == sum(r.count for r in breakdown.reasons)
        assert breakdown.present == real_total
        assert breakdown.to_protect == max(breakdown.target, breakdown.present) - breakdown.protected

    # The page shows those figures, and every drill-down list is as long as its number.
    client.force_login(admin)
    html = client.get(URL).content.decode()
    for breakdown, list_name, gaps in (
        (devices, "readiness:devices", DEVICE_GAPS),
        (identities, "readiness:identities", IDENTITY_GAPS),
    ):
        noun = breakdown.noun
        assert number(html, f"{noun}-to-protect") == breakdown.to_protect
        assert number(html, f"{noun}-protected") == breakdown.protected
        assert number(html, f"{noun}-target") == breakdown.target
        shown = {key: number(html, f"{noun}-{key}") for key in (*gaps, NOT_PRESENT)}
        assert sum(shown.values()) == number(html, f"{noun}-to-protect")
        for key in (*gaps, "protected"):
            response = client.get(reverse(list_name, args=[key]))
            listed = response.context["count"]
            assert listed == (shown[key] if key != "protected" else breakdown.protected), (noun, key)
            # The list itself, every page of it, not only its count.
            page = response.context["page_obj"]
            assert page.paginator.count == listed
            if listed <= 25:
                assert len(page.object_list) == listed

    # The CSV equals the page.
    rows = list(csv.reader(io.StringIO(client.get(reverse("readiness:export")).content.decode())))
    assets = {r[1]: r for r in rows if r[0] == "Protected assets"}
    for breakdown in (devices, identities):
        noun = breakdown.noun
        line = assets[f"Protected {noun}"]
        assert (int(line[7]), int(line[8]), int(line[9])) == (
            number(html, f"{noun}-protected"),
            number(html, f"{noun}-target"),
            number(html, f"{noun}-to-protect"),
        )
        for reason in breakdown.reasons:
            assert int(assets[f"{noun.capitalize()} still to protect: {reason.label}"][9]) == number(
                html, f"{noun}-{reason.key}"
            )

    # The provider sees the same figures as the customer.
    run = RefreshRun.objects.filter(tenant=tenant).latest("started_at")
    assert (run.devices_protected, run.devices_target) == (devices.protected, devices.target)
    assert (run.identities_protected, run.identities_target) == (identities.protected, identities.target)
    summary = readiness_summaries(tenant_ids=[tenant.pk])[tenant.pk]
    assert (summary.devices_protected, summary.devices_target) == (devices.protected, devices.target)
    client.force_login(sdm)
    provider = client.get(reverse("readiness_provider:tenant", args=[tenant.pk])).content.decode()
    for breakdown in (devices, identities):
        noun = breakdown.noun
        for part in ("protected", "target", "to-protect"):
            assert number(provider, f"provider-{noun}-{part}") == number(html, f"{noun}-{part}")
        for reason in breakdown.reasons:
            if reason.count:
                assert number(provider, f"provider-{noun}-{reason.key}") == reason.count

    # Access health is red whenever the experts reach none of the devices.
    reach = device_reach(tenant=tenant, snapshot=access_snapshot(tenant=tenant), scope=device_scope(tenant=tenant))
    health = access_health(tenant=tenant)
    assert reach.total == devices.present
    if reach.reachable == 0:
        assert health.tone == "error", (health.state, reach)
    if health.state == "active":
        assert reach.reachable == reach.total
