"""Exclusions: the services (versioned, audited, tenant-scoped), the selectors' counts and what the
effective-access panel and the provider's attempts make of them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from environment.models import Device, DirectoryUser
from exclusions.exceptions import (
    ExclusionsError,
    HighValueNeedsConfirmation,
    NotASecurityGroup,
    StaleExclusions,
)
from exclusions.models import ExcludedDeviceGroup, ExcludedUserGroup
from exclusions.selectors import (
    device_group_options,
    exclusion_counts,
    exclusion_rules,
    exclusion_state,
    user_group_options,
)
from exclusions.services import (
    exclusion_device_group_remove,
    exclusion_device_groups_add,
    exclusion_guide_finish,
    exclusion_high_value_set,
    exclusion_user_group_remove,
    exclusion_user_groups_add,
)
from permissions.evaluator import effective_access
from permissions.selectors import access_levels_state, access_snapshot, device_scope
from permissions.services import access_levels_set
from tests import factories

pytestmark = pytest.mark.django_db


def _actions(tenant) -> list[str]:
    return list(
        AuditEvent.objects.filter(tenant=tenant, action__startswith="exclusions.")
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_adding_device_groups_excludes_them_once_bumps_the_version_and_is_audited(contoso, admin):
    a = factories.device_group(contoso, "Alpha")
    b = factories.device_group(contoso, "Beta")
    n = exclusion_device_groups_add(
        tenant=contoso, acting_user=admin, device_group_ids=[a.pk, b.pk], expected_version=1
    )
    assert n == 2
    state = exclusion_state(tenant=contoso)
    assert state.version == 2 and [g.name for g in state.device_groups] == ["Alpha", "Beta"]
    # Adding one that's already there changes nothing: no version bump, no audit row.
    assert (
        exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[a.pk], expected_version=2) == 0
    )
    assert exclusion_state(tenant=contoso).version == 2
    ev = AuditEvent.objects.get(action="exclusions.device_groups_added")
    assert ev.actor == admin and "Alpha, Beta" in ev.summary and ev.after["device_groups"] == ["Alpha", "Beta"]


def test_a_stale_version_is_refused_and_nothing_is_saved(contoso, admin):
    a = factories.device_group(contoso, "Alpha")
    b = factories.device_group(contoso, "Beta")
    exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[a.pk], expected_version=1)
    with pytest.raises(StaleExclusions) as info:
        exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[b.pk], expected_version=1)
    assert info.value.status == 409
    assert [g.name for g in exclusion_state(tenant=contoso).device_groups] == ["Alpha"]
    assert _actions(contoso) == ["exclusions.device_groups_added"]


def test_another_tenants_groups_cannot_be_excluded(contoso, fabrikam, admin):
    theirs = factories.device_group(fabrikam, "Theirs")
    their_users = factories.security_group(fabrikam, "Their VIPs")
    with pytest.raises(ExclusionsError):
        exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[theirs.pk], expected_version=1)
    with pytest.raises(ExclusionsError):
        exclusion_user_groups_add(
            tenant=contoso, acting_user=admin, directory_group_ids=[their_users.pk], expected_version=1
        )
    with pytest.raises(ExclusionsError):
        exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=["x"], expected_version=1)
    assert not ExcludedDeviceGroup.objects.exists() and not ExcludedUserGroup.objects.exists()
    assert _actions(contoso) == []


def test_users_are_excluded_only_through_security_groups(contoso, admin):
    mail_only = factories.directory_group(contoso, "Newsletter")
    with pytest.raises(NotASecurityGroup):
        exclusion_user_groups_add(
            tenant=contoso, acting_user=admin, directory_group_ids=[mail_only.pk], expected_version=1
        )
    assert [o.name for o in user_group_options(tenant=contoso)] == []


def test_removing_groups_is_audited_and_a_removed_row_is_a_conflict(contoso, admin):
    a = factories.device_group(contoso, "Alpha")
    vips = factories.security_group(contoso, "VIPs")
    exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[a.pk], expected_version=1)
    exclusion_user_groups_add(tenant=contoso, acting_user=admin, directory_group_ids=[vips.pk], expected_version=2)
    row = ExcludedDeviceGroup.objects.get()
    exclusion_device_group_remove(tenant=contoso, acting_user=admin, excluded=row, expected_version=3)
    with pytest.raises(StaleExclusions):
        exclusion_device_group_remove(tenant=contoso, acting_user=admin, excluded=row, expected_version=4)
    exclusion_user_group_remove(
        tenant=contoso, acting_user=admin, excluded=ExcludedUserGroup.objects.get(), expected_version=4
    )
    state = exclusion_state(tenant=contoso)
    assert state.device_groups == [] and state.user_groups == [] and state.version == 5
    assert _actions(contoso) == [
        "exclusions.device_groups_added",
        "exclusions.user_groups_added",
        "exclusions.device_group_removed",
        "exclusions.user_group_removed",
    ]


def test_excluding_every_high_value_asset_asks_first(contoso, admin):
    with pytest.raises(HighValueNeedsConfirmation) as info:
        exclusion_high_value_set(tenant=contoso, acting_user=admin, enabled=True, expected_version=1)
    assert "tagged as high-value in the future" in info.value.message
    assert exclusion_rules(tenant=contoso).exclude_high_value is False
    assert exclusion_high_value_set(tenant=contoso, acting_user=admin, enabled=True, confirm=True, expected_version=1)
    assert exclusion_rules(tenant=contoso).exclude_high_value is True
    # Turning it off needs no confirmation.
    assert exclusion_high_value_set(tenant=contoso, acting_user=admin, enabled=False, expected_version=2)
    assert _actions(contoso) == ["exclusions.high_value_changed", "exclusions.high_value_changed"]


def test_counts_each_excluded_device_and_cloud_user_once_and_include_later_high_value_tags(contoso, fabrikam, admin):
    execs = factories.device_group(contoso, "Executives")
    grouped = factories.devices(contoso, 3, group=execs)
    others = factories.devices(contoso, 4)
    factories.devices(fabrikam, 5, group=factories.device_group(fabrikam, "Executives"))
    dc = factories.domain_controller(contoso, "dc01")
    cloud = [factories.directory_user(contoso, f"Cloud {i}") for i in range(2)]
    onprem = factories.directory_user(contoso, "Onprem", domain_controller=dc)
    vips = factories.security_group(contoso, "VIPs", members=[*cloud, onprem])
    # A user in two excluded groups is counted once.
    board = factories.security_group(contoso, "Board", members=[cloud[0]])
    exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[execs.pk], expected_version=1)
    exclusion_user_groups_add(
        tenant=contoso, acting_user=admin, directory_group_ids=[vips.pk, board.pk], expected_version=2
    )
    counts = exclusion_counts(tenant=contoso)
    assert (counts.devices, counts.users) == (3, 2)
    rows = {r.name: r for r in exclusion_state(tenant=contoso).user_groups}
    assert (rows["VIPs"].cloud_members, rows["VIPs"].on_premises_members) == (2, 1)
    assert exclusion_state(tenant=contoso).device_groups[0].devices == 3
    # High-value tags count only once the setting is on, and count assets tagged after it too.
    Device.objects.filter(pk=others[0].pk).update(high_value=True)
    factories.directory_user(contoso, "Sensitive", high_value=True)
    factories.directory_user(contoso, "Onprem sensitive", high_value=True, domain_controller=dc)
    assert (exclusion_counts(tenant=contoso).devices, exclusion_counts(tenant=contoso).users) == (3, 2)
    exclusion_high_value_set(tenant=contoso, acting_user=admin, enabled=True, confirm=True, expected_version=3)
    Device.objects.filter(pk=others[1].pk).update(high_value=True)
    # A high-value device in an excluded group is counted once.
    Device.objects.filter(device_group=execs).update(high_value=True)
    counts = exclusion_counts(tenant=contoso)
    assert (counts.devices, counts.users) == (5, 3)
    # An asset both tagged and in an excluded group is counted once.
    Device.objects.filter(pk=grouped[0].pk).update(high_value=True)
    DirectoryUser.objects.filter(pk=cloud[0].pk).update(high_value=True)
    counts = exclusion_counts(tenant=contoso)
    assert (counts.devices, counts.users) == (5, 3)
    assert exclusion_counts(tenant=fabrikam).devices == 0


def test_the_flyout_options_list_only_existing_groups_not_yet_excluded(contoso, fabrikam, admin):
    a = factories.device_group(contoso, "Alpha servers")
    factories.device_group(contoso, "Beta laptops")
    factories.device_group(fabrikam, "Alpha elsewhere")
    factories.security_group(contoso, "VIPs")
    exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[a.pk], expected_version=1)
    assert [o.name for o in device_group_options(tenant=contoso)] == ["Beta laptops"]
    assert [o.name for o in device_group_options(tenant=contoso, q="alpha")] == []
    assert [o.name for o in user_group_options(tenant=contoso, q="vip")] == ["VIPs"]


def test_the_guide_step_keeps_on_next_and_discards_on_skip_only_what_it_added(contoso, admin):
    before = factories.device_group(contoso, "Before")
    added = factories.device_group(contoso, "Added in the step")
    vips = factories.security_group(contoso, "VIPs")
    exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[before.pk], expected_version=1)
    exclusion_device_groups_add(
        tenant=contoso, acting_user=admin, device_group_ids=[added.pk], expected_version=2, in_guide=True
    )
    exclusion_user_groups_add(
        tenant=contoso, acting_user=admin, directory_group_ids=[vips.pk], expected_version=3, in_guide=True
    )
    assert exclusion_state(tenant=contoso).added_in_guide == 2
    assert exclusion_guide_finish(tenant=contoso, acting_user=admin, keep=False, expected_version=4) == 2
    state = exclusion_state(tenant=contoso)
    assert [g.name for g in state.device_groups] == ["Before"] and state.user_groups == []
    exclusion_device_groups_add(
        tenant=contoso, acting_user=admin, device_group_ids=[added.pk], expected_version=5, in_guide=True
    )
    assert exclusion_guide_finish(tenant=contoso, acting_user=admin, keep=True, expected_version=6) == 1
    # Confirmed: a later Skip has nothing to discard.
    assert exclusion_guide_finish(tenant=contoso, acting_user=admin, keep=False, expected_version=7) == 0
    assert [g.name for g in exclusion_state(tenant=contoso).device_groups] == ["Added in the step", "Before"]
    assert _actions(contoso)[-2:] == ["exclusions.device_groups_added", "exclusions.guide_confirmed"]
    assert "exclusions.guide_discarded" in _actions(contoso)


def test_the_effective_access_panel_counts_excluded_devices_and_users_and_marks_excluded_groups(contoso, admin):
    execs = factories.device_group(contoso, "Executives")
    factories.devices(contoso, 3, group=execs)
    factories.devices(contoso, 2)
    user = factories.directory_user(contoso, "Cloud VIP")
    vips = factories.security_group(contoso, "VIPs", members=[user])
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=True,
        expected_version=1,
        recently_authenticated=True,
    )

    def panel() -> dict:
        rules = exclusion_rules(tenant=contoso)
        items = effective_access(
            tenant=contoso,
            snapshot=access_snapshot(tenant=contoso),
            scope=device_scope(tenant=contoso),
            exclusions=rules,
            excluded=exclusion_counts(tenant=contoso, rules=rules),
        )
        return {i.key: i for i in items}

    items = panel()
    assert items["excluded"].status == "allowed" and "No device or user is excluded" in items["excluded"].reason
    assert items["response_actions"].status == "allowed"
    exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[execs.pk], expected_version=1)
    exclusion_user_groups_add(tenant=contoso, acting_user=admin, directory_group_ids=[vips.pk], expected_version=2)
    items = panel()
    assert items["excluded"].status == "guidance" and items["excluded"].status_label == "Guidance only"
    assert "3 devices and 1 user are excluded from remediation" in items["excluded"].reason
    assert "still investigated and protected" in items["excluded"].reason
    response = items["response_actions"]
    assert response.status == "partial" and "3 devices in excluded device groups get remediation guidance" in (
        response.reason
    )
    assert [(label, ok, guidance) for label, ok, _, guidance in response.children] == [
        ("Executives (3 devices)", False, True),
        ("Devices not in any device group (2 devices)", True, False),
    ]
    # Investigating isn't limited by exclusions.
    assert items["investigate_devices"].status == "allowed"
    assert access_levels_state(tenant=contoso).respond


def test_the_provider_attempt_answers_guidance_only_for_an_excluded_user_and_logs_it(login, sdm, contoso, admin):
    user = factories.directory_user(contoso, "Cloud VIP")
    vips = factories.security_group(contoso, "VIPs", members=[user])
    execs = factories.device_group(contoso, "Executives")
    device = factories.devices(contoso, 1, group=execs, prefix="exe")[0]
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=True,
        expected_version=1,
        recently_authenticated=True,
    )
    exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[execs.pk], expected_version=1)
    exclusion_user_groups_add(tenant=contoso, acting_user=admin, directory_group_ids=[vips.pk], expected_version=2)
    client = login(sdm)
    url = reverse("permissions_provider:tenant", args=[contoso.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="exclusions-read-only"' in page and "Executives" in page and "VIPs" in page
    assert "<form" not in page.split('data-testid="exclusions-read-only"')[1].split("</section>")[0]
    body = client.post(url, {"action": "disable_user", "user": user.user_principal_name}).content.decode()
    assert 'data-guidance="1"' in body and "Guidance only: Disable a user account" in body
    assert "member of the user group “VIPs”" in body
    body = client.post(url, {"action": "isolate_device", "device": device.name}).content.decode()
    assert 'data-guidance="1"' in body and "device group “Executives”" in body
    ev = AuditEvent.objects.filter(action="permissions.expert_action_refused").order_by("id")
    assert [e.after["code"] for e in ev] == ["excluded_user_group", "excluded_device_group"]
    assert ev[0].summary.startswith("Guidance only: Disable a user account on ")
    # A user action needs a user; an unknown one is a form error, nothing logged.
    response = client.post(url, {"action": "disable_user", "user": "nobody@contoso.example"})
    assert response.status_code == 400 and "no user" in response.content.decode()
    response = client.post(url, {"action": "disable_user", "device": device.name})
    assert response.status_code == 400 and "Enter the user principal name" in response.content.decode()
    assert ev.count() == 2


def test_every_exclusions_audit_action_reads_as_words_in_the_log():
    from pathlib import Path

    from audit.presentation import ACTION_LABELS

    source = Path(__file__).resolve().parent.parent.joinpath("exclusions", "services.py").read_text(encoding="utf-8")
    actions = {"exclusions." + a for a in re.findall(r'AUDIT_PREFIX \+ (?:\(?"|.*?")([a-z_]+)"', source)}
    actions |= {"exclusions." + a for a in re.findall(r'"(guide_confirmed|guide_discarded)"', source)}
    assert len(actions) == 7 and actions <= set(ACTION_LABELS)
