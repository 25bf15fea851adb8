"""The device tally equals a GROUP BY of the devices after any change, however it is made.

Pages read device counts from ``DeviceTally`` instead of counting the device table; database triggers
keep it right in the transaction of each change. These tests make changes the ways the portal does
(bulk inserts, the services' bulk UPDATEs, a device group or a tenant deleted, plain deletes) and
compare the tally with a fresh count.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection, transaction
from django.db.models import Count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from environment import selectors, services
from environment.models import AntivirusMode, Device, DeviceGroup, DeviceTally, OnboardingState
from tenancy.models import Tenant
from tests import factories

pytestmark = pytest.mark.django_db


Cell = tuple[int, str, str, bool]


def _tally(tenant: Tenant) -> Counter[Cell]:
    rows = DeviceTally.objects.filter(tenant=tenant).values_list(
        "group_key", "onboarding_state", "av_mode", "high_value", "devices"
    )
    return Counter({(g, s, m, h): n for g, s, m, h, n in rows})


def _counted(tenant: Tenant) -> Counter[Cell]:
    rows = (
        Device.objects.filter(tenant=tenant)
        .order_by()
        .values_list("device_group_id", "onboarding_state", "av_mode", "high_value")
        .annotate(n=Count("id"))
    )
    return Counter({(g or 0, s, m, h): n for g, s, m, h, n in rows})


def _assert_right(*tenants: Tenant) -> None:
    for tenant in tenants:
        assert _tally(tenant) == _counted(tenant)
        # Cells that reach 0 are removed, so the tally never grows with past states.
        assert not DeviceTally.objects.filter(tenant=tenant, devices__lte=0).exists()


MODES = st.sampled_from(AntivirusMode.values)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 30), st.integers(0, 2), st.booleans(), MODES),
        st.tuples(st.just("onboard"), st.integers(1, 40), st.integers(0, 2)),
        st.tuples(st.just("mode"), MODES, st.one_of(st.none(), MODES), st.integers(0, 2)),
        st.tuples(st.just("regroup"), st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.just("delete"), st.integers(0, 9)),
        st.tuples(st.just("drop_group"), st.integers(1, 2)),
        st.tuples(st.just("high_value"), st.integers(0, 9), st.booleans()),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_tally_matches_the_devices_after_any_changes(contoso, fabrikam, operations):
    with transaction.atomic():
        groups: list[DeviceGroup | None] = [None, factories.device_group(contoso), factories.device_group(contoso)]
        # Another tenant's devices, changed by nothing here, must keep their own counts.
        factories.devices(fabrikam, 7, onboarded=False, av_mode=AntivirusMode.PASSIVE)
        for op in operations:
            kind = op[0]
            if kind == "add":
                _, n, g, onboarded, mode = op
                factories.devices(contoso, n, group=groups[g], onboarded=onboarded, av_mode=mode)
            elif kind == "onboard":
                _, n, g = op
                services.devices_onboard(tenant=contoso, acting_user=None, count=n, device_group=groups[g])
            elif kind == "mode":
                _, mode, from_mode, g = op
                services.devices_set_antivirus_mode(
                    tenant=contoso,
                    acting_user=None,
                    mode=mode,
                    from_mode=from_mode,
                    device_group=groups[g],
                    all_devices=groups[g] is None,
                )
            elif kind == "regroup":
                _, source, target = op
                moved = Device.objects.filter(tenant=contoso, device_group=groups[source])
                moved.filter(pk__in=moved.values("pk")[:5]).update(device_group=groups[target])
            elif kind == "delete":
                _, every = op
                Device.objects.filter(
                    tenant=contoso, pk__in=[d.pk for d in Device.objects.filter(tenant=contoso)][:: every + 2]
                ).delete()
            elif kind == "high_value":
                _, every, tagged = op
                chosen = [d.pk for d in Device.objects.filter(tenant=contoso).order_by("pk")][:: every + 2]
                if chosen:
                    services.devices_set_high_value(
                        tenant=contoso, acting_user=None, device_ids=chosen, high_value=tagged
                    )
            elif kind == "drop_group":
                group = groups[op[1]]
                if group is not None:
                    group.delete()  # its devices become ungrouped (SET NULL): an UPDATE the triggers see
                    groups[op[1]] = None
            _assert_right(contoso, fabrikam)
        transaction.set_rollback(True)


def test_a_change_that_leaves_the_cells_alone_writes_no_tally(contoso):
    factories.devices(contoso, 20)
    before = list(DeviceTally.objects.filter(tenant=contoso).values_list("id", "devices"))
    Device.objects.filter(tenant=contoso).update(last_seen=None, os_platform="linux")
    assert list(DeviceTally.objects.filter(tenant=contoso).values_list("id", "devices")) == before


def test_deleting_a_tenant_leaves_no_tally(contoso, fabrikam):
    factories.devices(contoso, 12, group=factories.device_group(contoso))
    factories.devices(fabrikam, 3)
    contoso.delete()
    assert not DeviceTally.objects.filter(tenant_id=contoso.pk).exists()
    _assert_right(fabrikam)


def test_device_counts_come_from_the_tally(contoso, django_assert_num_queries):
    servers = factories.device_group(contoso, "Servers")
    factories.devices(contoso, 4, group=servers, av_mode=AntivirusMode.PASSIVE)
    factories.devices(contoso, 3, onboarded=False)
    factories.devices(contoso, 2)
    with django_assert_num_queries(1):
        counts = selectors.device_counts(tenant=contoso)
    assert (counts.total, counts.onboarded, counts.protected, counts.passive) == (9, 6, 2, 4)
    assert [(g.name, g.total) for g in counts.groups] == [("Servers", 4), ("Ungrouped devices", 5)]
    assert counts.matching(group_id=servers.pk) == 4
    assert counts.matching(onboarding=OnboardingState.NOT_ONBOARDED) == 3
    assert counts.matching(onboarding=OnboardingState.ONBOARDED, av=AntivirusMode.ACTIVE) == 2


def test_the_tally_is_kept_by_the_database_for_any_writer(contoso):
    """Raw SQL, as the demo seed and bulk tools use: the triggers see it too."""
    factories.devices(contoso, 5)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE environment_device SET av_mode = 'disabled' WHERE tenant_id = %s AND name LIKE %s",
            [contoso.pk, "%-00000_"],
        )
    _assert_right(contoso)
    assert _tally(contoso)[(0, OnboardingState.ONBOARDED, AntivirusMode.DISABLED, False)] == 5


def test_a_high_value_tag_moves_devices_between_cells(contoso):
    servers = factories.device_group(contoso, "Servers")
    factories.devices(contoso, 6, group=servers)
    tagged = list(Device.objects.filter(tenant=contoso).order_by("pk").values_list("pk", flat=True)[:4])
    services.devices_set_high_value(tenant=contoso, acting_user=None, device_ids=tagged, high_value=True)
    _assert_right(contoso)
    active = (servers.pk, OnboardingState.ONBOARDED, AntivirusMode.ACTIVE)
    assert (_tally(contoso)[(*active, True)], _tally(contoso)[(*active, False)]) == (4, 2)
    services.devices_set_high_value(tenant=contoso, acting_user=None, device_ids=tagged[:1], high_value=False)
    _assert_right(contoso)
    assert (_tally(contoso)[(*active, True)], _tally(contoso)[(*active, False)]) == (3, 3)
