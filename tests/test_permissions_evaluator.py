"""The evaluator's table of cases: one row per rule, each would fail without it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from environment.models import Device
from exclusions.selectors import exclusion_state
from exclusions.services import exclusion_device_groups_add, exclusion_high_value_set, exclusion_user_groups_add
from permissions.evaluator import ExpertAction, can_experts
from permissions.selectors import access_levels_state, access_snapshot
from permissions.services import access_levels_set, all_devices_set, provider_access_remove
from tests import factories

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

V = ExpertAction.VIEW_INCIDENTS
INV = ExpertAction.INVESTIGATE_DEVICE
ISO = ExpertAction.ISOLATE_DEVICE
SCAN = ExpertAction.RUN_ANTIVIRUS_SCAN
QUAR = ExpertAction.STOP_AND_QUARANTINE_FILE
IDS = ExpertAction.SEE_IDENTITIES
DIS = ExpertAction.DISABLE_USER

# (setup, action, target, allowed, code)
#   setup: "pending" | "reader" | "operator" | "both" | "none" | "removed"
#          with suffix "+scoped" for all-devices off, "+expired" for clock 200 days later,
#          "+excl" for the device group "Executives" and the security group "VIPs" excluded
#          from remediation, "+hv" for every high-value device and user excluded
#   target: None | "grouped" | "ungrouped" | "offboarded" | "foreign" | "group"
#           | "excluded_device" (in Executives) | "excluded_group" (Executives itself) | "hv_device"
#           | "user" | "excluded_user" (a cloud member of VIPs) | "onprem_user" (an on-premises member of VIPs)
#           | "hv_user" | "hv_onprem_user" | "foreign_user"
#   A code starting with "excluded_" is "guidance only" (Decision.guidance).
CASES = [
    ("pending", V, None, False, "pending"),
    ("pending", ISO, "ungrouped", False, "pending"),
    ("removed", V, None, False, "removed"),
    ("removed", IDS, None, False, "removed"),
    ("removed", ISO, "ungrouped", False, "removed"),
    ("none", V, None, False, "no_level"),
    ("none", INV, "ungrouped", False, "no_level"),
    ("none", ISO, "ungrouped", False, "respond_ended"),
    ("reader", V, None, True, "allowed"),
    ("reader", IDS, None, True, "allowed"),
    ("reader", INV, "grouped", True, "allowed"),
    ("reader", INV, "ungrouped", True, "allowed"),
    ("reader", ISO, "ungrouped", False, "no_respond"),
    ("reader", SCAN, "ungrouped", False, "no_respond"),
    ("reader", QUAR, "ungrouped", False, "no_respond"),
    ("operator", V, None, True, "allowed"),
    ("operator", IDS, None, True, "allowed"),
    ("operator", INV, "grouped", True, "allowed"),
    ("operator", ISO, "ungrouped", True, "allowed"),
    ("operator", SCAN, "grouped", True, "allowed"),
    ("operator", QUAR, "grouped", True, "allowed"),
    ("operator", ISO, "offboarded", False, "not_onboarded"),
    ("operator", ISO, "foreign", False, "foreign_device"),
    ("operator", INV, "foreign", False, "foreign_device"),
    ("both", ISO, "ungrouped", True, "allowed"),
    ("both+scoped", INV, "grouped", False, "device_group_out_of_reach"),
    ("both+scoped", INV, "group", False, "device_group_out_of_reach"),
    ("both+scoped", ISO, "grouped", False, "device_group_out_of_reach"),
    ("both+scoped", INV, "ungrouped", True, "allowed"),
    ("both+scoped", ISO, "ungrouped", True, "allowed"),
    ("both+scoped", V, None, True, "allowed"),
    ("both+scoped", IDS, None, True, "allowed"),
    ("both+expired", V, None, False, "no_level"),
    ("both+expired", ISO, "ungrouped", False, "respond_ended"),
    ("reader", "format_disk", None, False, "unknown_action"),
    # Exclusions: a remediation on an excluded device or user is guidance only; reading isn't limited.
    ("operator+excl", ISO, "excluded_device", False, "excluded_device_group"),
    ("operator+excl", SCAN, "excluded_device", False, "excluded_device_group"),
    ("operator+excl", QUAR, "excluded_device", False, "excluded_device_group"),
    ("operator+excl", ISO, "excluded_group", False, "excluded_device_group"),
    ("operator+excl", INV, "excluded_device", True, "allowed"),
    ("operator+excl", ISO, "ungrouped", True, "allowed"),
    ("operator+excl", ISO, "grouped", True, "allowed"),
    ("operator+excl", ISO, None, True, "allowed"),
    ("operator", ISO, "excluded_device", True, "allowed"),
    ("reader+excl", ISO, "excluded_device", False, "no_respond"),
    ("both+excl+scoped", ISO, "excluded_device", False, "device_group_out_of_reach"),
    ("operator+excl", DIS, "excluded_user", False, "excluded_user_group"),
    ("operator+excl", DIS, "onprem_user", True, "allowed"),
    ("operator+excl", DIS, "user", True, "allowed"),
    ("operator+excl", DIS, None, True, "allowed"),
    ("operator", DIS, "excluded_user", True, "allowed"),
    ("operator+hv", ISO, "hv_device", False, "excluded_high_value"),
    ("operator+hv", INV, "hv_device", True, "allowed"),
    ("operator", ISO, "hv_device", True, "allowed"),
    ("operator+excl", ISO, "hv_device", True, "allowed"),
    ("operator+hv", DIS, "hv_user", False, "excluded_high_value"),
    ("operator+hv", DIS, "hv_onprem_user", True, "allowed"),
    ("operator", DIS, "hv_user", True, "allowed"),
    ("operator+hv", DIS, "excluded_user", True, "allowed"),
    ("operator", DIS, "foreign_user", False, "foreign_user"),
    ("operator", DIS, "ungrouped", False, "bad_target"),
    ("reader+excl", DIS, "excluded_user", False, "no_respond"),
    ("pending", DIS, "user", False, "pending"),
]


def _setup(tenant, user, setup: str) -> None:
    base = setup.split("+")[0]
    if base == "pending":
        return
    inv = base in {"reader", "both", "none", "removed"}
    resp = base in {"operator", "both", "none"}
    with time_machine.travel(T0, tick=False):
        access_levels_set(
            tenant=tenant,
            acting_user=user,
            investigate=inv,
            respond=resp,
            expected_version=1,
            recently_authenticated=True,
        )
        if base == "none":
            access_levels_set(
                tenant=tenant,
                acting_user=user,
                investigate=False,
                respond=False,
                expected_version=access_levels_state(tenant=tenant).version,
                confirm_reduced_access=True,
            )
        if base == "removed":
            provider_access_remove(
                tenant=tenant, acting_user=user, expected_version=access_levels_state(tenant=tenant).version
            )
        if "+scoped" in setup:
            all_devices_set(
                tenant=tenant,
                acting_user=user,
                enabled=False,
                confirm=True,
                expected_version=access_levels_state(tenant=tenant).version,
            )


def _exclude(tenant, user, setup: str, executives, vips) -> None:
    if "+excl" in setup:
        exclusion_device_groups_add(
            tenant=tenant, acting_user=user, device_group_ids=[executives.pk], expected_version=1
        )
        exclusion_user_groups_add(tenant=tenant, acting_user=user, directory_group_ids=[vips.pk], expected_version=2)
    if "+hv" in setup:
        exclusion_high_value_set(
            tenant=tenant,
            acting_user=user,
            enabled=True,
            confirm=True,
            expected_version=exclusion_state(tenant=tenant).version,
        )


@pytest.mark.parametrize(("setup", "action", "target", "allowed", "code"), CASES)
def test_can_experts(contoso, fabrikam, admin, setup, action, target, allowed, code):
    group = factories.device_group(contoso, "Finance servers")
    executives = factories.device_group(contoso, "Executives")
    dc = factories.domain_controller(contoso, "dc01")
    cloud = factories.directory_user(contoso, "Cloud VIP")
    onprem = factories.directory_user(contoso, "Onprem VIP", domain_controller=dc)
    vips = factories.security_group(contoso, "VIPs", members=[cloud, onprem])
    hv_device = factories.devices(contoso, 1, prefix="ceo")[0]
    Device.objects.filter(pk=hv_device.pk).update(high_value=True)
    targets = {
        None: None,
        "grouped": factories.devices(contoso, 1, group=group, prefix="fin")[0],
        "ungrouped": factories.devices(contoso, 1, prefix="lap")[0],
        "offboarded": factories.devices(contoso, 1, onboarded=False, prefix="old")[0],
        "foreign": factories.devices(fabrikam, 1, prefix="fab")[0],
        "group": group,
        "excluded_device": factories.devices(contoso, 1, group=executives, prefix="exe")[0],
        "excluded_group": executives,
        "hv_device": hv_device,
        "user": factories.directory_user(contoso, "Plain User"),
        "excluded_user": cloud,
        "onprem_user": onprem,
        "hv_user": factories.directory_user(contoso, "Cloud Sensitive", high_value=True),
        "hv_onprem_user": factories.directory_user(contoso, "Onprem Sensitive", high_value=True, domain_controller=dc),
        "foreign_user": factories.directory_user(fabrikam, "Fabrikam User"),
    }
    obj = targets[target]
    if isinstance(obj, Device):
        obj = Device.objects.select_related("device_group").get(pk=obj.pk)
    _setup(contoso, admin, setup)
    _exclude(contoso, admin, setup, executives, vips)
    when = T0 + timedelta(days=200) if "+expired" in setup else T0 + timedelta(days=1)
    with time_machine.travel(when, tick=False):
        decision = can_experts(contoso, action, obj)
    assert (decision.allowed, decision.code) == (allowed, code), decision.reason
    assert decision.reason
    assert decision.guidance == code.startswith("excluded_")
    if decision.guidance:
        assert "remediation guidance" in decision.reason


def test_reasons_name_the_grant_and_the_group(contoso, admin):
    group = factories.device_group(contoso, "Finance servers")
    dev = Device.objects.select_related("device_group").get(pk=factories.devices(contoso, 1, group=group)[0].pk)
    with time_machine.travel(T0, tick=False):
        access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=1)
        d = can_experts(contoso, ExpertAction.VIEW_INCIDENTS)
        assert "Investigate incidents and guide my responses (Security Reader) is granted until 28 Aug 2026" in d.reason
        all_devices_set(tenant=contoso, acting_user=admin, enabled=False, confirm=True, expected_version=2)
        d = can_experts(contoso, ExpertAction.INVESTIGATE_DEVICE, dev)
        assert "Finance servers" in d.reason and "Access security data from all devices is off" in d.reason


def test_a_snapshot_lets_the_panel_ask_many_questions_in_two_queries(contoso, admin, django_assert_num_queries):
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=True,
        expected_version=1,
        recently_authenticated=True,
    )
    with django_assert_num_queries(2):
        snap = access_snapshot(tenant=contoso)
        for action in ExpertAction.values:
            can_experts(contoso, action, None, snapshot=snap)


def test_effective_access_answers_per_device_group(contoso, admin):
    from exclusions.selectors import exclusion_counts, exclusion_rules
    from permissions.evaluator import effective_access
    from permissions.selectors import device_scope

    finance = factories.device_group(contoso, "Finance")
    factories.devices(contoso, 3, group=finance)
    factories.devices(contoso, 2)
    access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=1)
    items = {
        i.key: i
        for i in effective_access(
            tenant=contoso,
            snapshot=access_snapshot(tenant=contoso),
            scope=device_scope(tenant=contoso),
            exclusions=exclusion_rules(tenant=contoso),
            excluded=exclusion_counts(tenant=contoso),
        )
    }
    assert [i for i in items] == [
        "view_incidents",
        "investigate_devices",
        "response_actions",
        "see_identities",
        "excluded",
    ]
    inv = items["investigate_devices"]
    assert inv.status == "allowed" and "all 5 devices, including every device group" in inv.reason
    assert [(label, ok) for label, ok, _, _ in inv.children] == [
        ("Finance (3 devices)", True),
        ("Devices not in any device group (2 devices)", True),
    ]
    assert items["response_actions"].status == "refused" and not items["response_actions"].children
    all_devices_set(tenant=contoso, acting_user=admin, enabled=False, confirm=True, expected_version=2)
    items = {
        i.key: i
        for i in effective_access(
            tenant=contoso,
            snapshot=access_snapshot(tenant=contoso),
            scope=device_scope(tenant=contoso),
            exclusions=exclusion_rules(tenant=contoso),
            excluded=exclusion_counts(tenant=contoso),
        )
    }
    inv = items["investigate_devices"]
    assert inv.status == "partial" and "puts 3 devices in 1 device group out of reach" in inv.reason
    assert [(label, ok) for label, ok, _, _ in inv.children] == [
        ("Finance (3 devices)", False),
        ("Devices not in any device group (2 devices)", True),
    ]
    assert items["view_incidents"].status == "allowed" and items["see_identities"].status == "allowed"
