"""The one place that decides what the provider's experts may do in a tenant.

``can_experts(tenant, action, target)`` answers for the Effective access panel,
for the provider's "attempt an action" form and for anything else that needs
to know. It reads the relationship and the grants (two queries), or a
snapshot the caller already loaded. Rules, in order:

1. Service provider access must be active (not pending, not removed).
2. The action needs a live grant: reading (view incidents, investigate
   devices, see identities) needs either level, since Security Operator
   includes Security Reader's read access; response actions need
   Respond directly to active threats (Security Operator). A grant past its
   end date is ended even if the expiry sweep hasn't run yet.
3. A device target must belong to the tenant. When Access security data from
   all devices is off, devices in a Defender for Endpoint device group are out
   of reach.
4. A remediation on an excluded device or user (a device in an excluded device
   group, a cloud user in an excluded security group, or any high-value asset
   when the tenant excludes them all) is "guidance only": refused, and the
   experts guide the customer instead (``Decision.guidance``). Exclusions
   don't limit reading: an excluded asset is still investigated and protected.
5. Response actions run through the Defender for Endpoint sensor, so the
   device must be onboarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from environment.models import Device, DeviceGroup, DirectoryUser, OnboardingState
from exclusions.selectors import ExclusionCounts, ExclusionRules, exclusion_rules, user_excluding_group
from permissions.models import AccessLevel, AccessState
from permissions.selectors import AccessSnapshot, DeviceGroupReach, access_snapshot
from tenancy.models import Tenant


class ExpertAction(models.TextChoices):
    VIEW_INCIDENTS = "view_incidents", "View incidents"
    INVESTIGATE_DEVICE = "investigate_device", "Investigate a device"
    ISOLATE_DEVICE = "isolate_device", "Isolate a device"
    RUN_ANTIVIRUS_SCAN = "run_antivirus_scan", "Run an antivirus scan"
    STOP_AND_QUARANTINE_FILE = "stop_and_quarantine_file", "Stop and quarantine a file"
    SEE_IDENTITIES = "see_identities", "See identities"
    DISABLE_USER = "disable_user", "Disable a user account"


DEVICE_RESPONSE_ACTIONS = frozenset(
    {ExpertAction.ISOLATE_DEVICE, ExpertAction.RUN_ANTIVIRUS_SCAN, ExpertAction.STOP_AND_QUARANTINE_FILE}
)
USER_RESPONSE_ACTIONS = frozenset({ExpertAction.DISABLE_USER})
RESPONSE_ACTIONS = DEVICE_RESPONSE_ACTIONS | USER_RESPONSE_ACTIONS
DEVICE_ACTIONS = DEVICE_RESPONSE_ACTIONS | {ExpertAction.INVESTIGATE_DEVICE}

INVESTIGATE = AccessLevel.INVESTIGATE.label
RESPOND = AccessLevel.RESPOND.label
ALL_DEVICES = "Access security data from all devices"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    action: str
    code: str  # a stable key for tests and logs
    # Refused because the target is excluded from remediation: the experts give remediation guidance instead.
    guidance: bool = False

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def action_label(self) -> str:
        return ExpertAction(self.action).label


def _until(snap: AccessSnapshot, level: str) -> str:
    g = snap.live[level]
    return f"{g.level_label} ({g.role_label}) is granted until {g.ends_at:%d %b %Y}"


def _guidance(reason: str) -> str:
    return f"{reason} Our experts give you remediation guidance for it instead of taking the action themselves."


def can_experts(
    tenant: Tenant,
    action: str,
    target: Any = None,
    *,
    snapshot: AccessSnapshot | None = None,
    exclusions: ExclusionRules | None = None,
) -> Decision:
    """Whether the provider's experts may perform ``action`` on ``target`` now, and why.

    ``exclusions`` (``exclusions.selectors.exclusion_rules``) is read only when a remediation
    names its target, if the caller hasn't loaded it.
    """
    try:
        act = ExpertAction(action)
    except ValueError:
        return Decision(False, f"“{action}” isn't an action the experts can take.", str(action), "unknown_action")
    snap = snapshot or access_snapshot(tenant=tenant)

    def no(reason: str, code: str) -> Decision:
        return Decision(False, reason, act.value, code)

    def yes(reason: str) -> Decision:
        return Decision(True, reason, act.value, "allowed")

    def guidance_only(reason: str, code: str) -> Decision:
        return Decision(False, _guidance(reason), act.value, code, guidance=True)

    def rules() -> ExclusionRules:
        return exclusions if exclusions is not None else exclusion_rules(tenant=tenant)

    access = snap.access
    if access.state == AccessState.REMOVED:
        return no("Service provider access was removed, so our experts can't sign in to your tenant.", "removed")
    if access.state != AccessState.ACTIVE:
        return no(
            "Service provider access hasn't been granted, so our experts can't sign in to your tenant.", "pending"
        )

    has_read = snap.has(AccessLevel.INVESTIGATE) or snap.has(AccessLevel.RESPOND)
    read_via = AccessLevel.INVESTIGATE if snap.has(AccessLevel.INVESTIGATE) else AccessLevel.RESPOND

    if act in RESPONSE_ACTIONS:
        if not snap.has(AccessLevel.RESPOND):
            ended = snap.ended.get(AccessLevel.RESPOND)
            if ended is not None:
                return no(
                    f"{RESPOND} ended on {ended.ended_at:%d %b %Y} ({ended.reason_label.lower()}). "
                    "Our experts can guide you through this action but can't take it themselves.",
                    "respond_ended",
                )
            return no(
                f"{RESPOND} (Security Operator) isn't granted. Our experts can guide you through this action "
                "but can't take it themselves.",
                "no_respond",
            )
    elif not has_read:
        return no(
            f"No access level is granted. Turn on {INVESTIGATE} or {RESPOND} "
            "so our experts can see your security data.",
            "no_level",
        )

    if act in USER_RESPONSE_ACTIONS:
        if target is None:
            return yes(f"{_until(snap, AccessLevel.RESPOND)}.")
        if not isinstance(target, DirectoryUser):
            return no("Choose a user.", "bad_target")
        if target.tenant_id != tenant.pk:
            return no("That user isn't in this tenant.", "foreign_user")
        if target.domain_controller_id is None:
            # On-premises users can't be excluded (the later document's note), so only cloud users are asked about.
            if rules().exclude_high_value and target.high_value:
                return guidance_only(
                    f"{target.display_name} is tagged as high value and all high-value devices and users are "
                    "excluded from remediation.",
                    "excluded_high_value",
                )
            group = user_excluding_group(tenant=tenant, user=target) if rules().has_user_groups else None
            if group is not None:
                return guidance_only(
                    f"{target.display_name} is a member of the user group “{group}”, which is excluded from "
                    "remediation.",
                    "excluded_user_group",
                )
        return yes(f"{_until(snap, AccessLevel.RESPOND)}.")

    if act not in DEVICE_ACTIONS:
        subject = "incidents" if act == ExpertAction.VIEW_INCIDENTS else "identities"
        return yes(f"{_until(snap, read_via)}, which lets our experts see {subject}.")

    # Device actions: scope checks on the target.
    group_id: int | None
    device: Device | None = None
    if isinstance(target, Device):
        if target.tenant_id != tenant.pk:
            return no("That device isn't in this tenant.", "foreign_device")
        device = target
        group_id = target.device_group_id
    elif isinstance(target, DeviceGroup):
        if target.tenant_id != tenant.pk:
            return no("That device group isn't in this tenant.", "foreign_device")
        group_id = target.pk
    elif target is None:
        group_id = None
    else:
        return no("Choose a device.", "bad_target")

    if group_id is not None and not access.all_devices:
        where = f"device group “{target.device_group.name}”" if device is not None else f"device group “{target.name}”"
        return no(
            f"This device belongs to {where} and {ALL_DEVICES} is off, so our experts can't reach it."
            if device is not None
            else f"Devices in {where} are out of reach because {ALL_DEVICES} is off.",
            "device_group_out_of_reach",
        )

    if act in DEVICE_RESPONSE_ACTIONS and target is not None:
        excluded = rules()
        if group_id is not None and group_id in excluded.excluded_device_groups:
            name = excluded.excluded_device_groups[group_id]
            return guidance_only(
                f"{device.name} is in the device group “{name}”, which is excluded from remediation."
                if device is not None
                else f"The device group “{name}” is excluded from remediation.",
                "excluded_device_group",
            )
        if device is not None and device.high_value and excluded.exclude_high_value:
            return guidance_only(
                f"{device.name} is tagged as high value and all high-value devices and users are excluded "
                "from remediation.",
                "excluded_high_value",
            )

    if act in RESPONSE_ACTIONS:
        if device is not None and device.onboarding_state != OnboardingState.ONBOARDED:
            return no(
                f"{device.name} isn't onboarded to Microsoft Defender for Endpoint, "
                "so no response action can run on it.",
                "not_onboarded",
            )
        return yes(f"{_until(snap, AccessLevel.RESPOND)}.")

    if access.all_devices or target is not None:
        # The badge already says "Allowed"; the reason says which grant allows it.
        return yes(f"{_until(snap, read_via)}.")
    return yes(f"{_until(snap, read_via)}, on devices outside device groups.")


# --- Reach: which devices the experts can get to ------------------------------------------


@dataclass(frozen=True)
class GroupDecisions:
    """``action`` asked of ``can_experts`` for the tenant as a whole and for each device group."""

    overall: Decision
    decisions: tuple[tuple[DeviceGroupReach, Decision], ...]
    ungrouped_devices: int

    @property
    def out_of_reach(self) -> int:
        """Devices the action can't reach at all (guidance-only devices are reached, just not acted on)."""
        if not self.overall.allowed:
            return self.ungrouped_devices + sum(group.devices for group, _ in self.decisions)
        return sum(group.devices for group, d in self.decisions if not d.allowed and not d.guidance)

    @property
    def guided(self) -> int:
        return sum(group.devices for group, d in self.decisions if d.guidance) if self.overall.allowed else 0

    @property
    def out_of_reach_reason(self) -> str:
        refused = sum(1 for _, d in self.decisions if not d.allowed and not d.guidance)
        return (
            f"{ALL_DEVICES} is off, which puts {_devices(self.out_of_reach)} in {refused} device "
            f"group{'s' if refused != 1 else ''} out of reach."
        )


def device_group_decisions(
    *, tenant: Tenant, action: ExpertAction, snapshot: AccessSnapshot, scope: Any, exclusions: ExclusionRules | None
) -> GroupDecisions:
    """``can_experts`` on the tenant and on each of ``scope``'s device groups (a DeviceGroup target): the one
    place the Effective access panel and access health learn which devices are in reach."""
    overall = can_experts(tenant, action, None, snapshot=snapshot, exclusions=exclusions)
    decisions = tuple(
        (
            group,
            can_experts(
                tenant,
                action,
                DeviceGroup(pk=group.pk, tenant_id=tenant.pk, name=group.name),
                snapshot=snapshot,
                exclusions=exclusions,
            ),
        )
        for group in scope.groups
    )
    return GroupDecisions(overall=overall, decisions=decisions, ungrouped_devices=scope.ungrouped_devices)


@dataclass(frozen=True)
class DeviceReach:
    """How many of the tenant's devices the experts can investigate right now.

    Counted from ``device_group_decisions`` for Investigate a device: reading is what every
    access level gives, and an excluded device is still investigated (it only gets guidance
    instead of response actions), so it is in reach.
    """

    total: int
    reachable: int
    reason: str  # why the others are out of reach; "" when every device is reachable

    @property
    def out_of_reach(self) -> int:
        return self.total - self.reachable

    @property
    def percent(self) -> int:
        """Whole percent reached, rounded down (99.9% is not all); 100 for a tenant without devices."""
        return 100 * self.reachable // self.total if self.total else 100


def device_reach(*, tenant: Tenant, snapshot: AccessSnapshot, scope: Any) -> DeviceReach:
    groups = device_group_decisions(
        tenant=tenant, action=ExpertAction.INVESTIGATE_DEVICE, snapshot=snapshot, scope=scope, exclusions=None
    )
    total = scope.total_devices
    if not groups.overall.allowed:
        return DeviceReach(total=total, reachable=0, reason=groups.overall.reason)
    out = groups.out_of_reach
    return DeviceReach(total=total, reachable=total - out, reason=groups.out_of_reach_reason if out else "")


# --- The Effective access panel -------------------------------------------------------


@dataclass(frozen=True)
class EffectiveItem:
    key: str
    title: str
    status: str  # "allowed" | "refused" | "partial" | "guidance"
    reason: str
    # (label, allowed, reason, guidance only)
    children: tuple[tuple[str, bool, str, bool], ...] = ()

    @property
    def status_label(self) -> str:
        return {"allowed": "Allowed", "refused": "Not allowed", "partial": "Limited", "guidance": "Guidance only"}[
            self.status
        ]


def _devices(n: int) -> str:
    return f"{n:,} device{'s' if n != 1 else ''}"


def effective_access(
    *,
    tenant: Tenant,
    snapshot: AccessSnapshot,
    scope: Any,
    exclusions: ExclusionRules,
    excluded: ExclusionCounts,
) -> list[EffectiveItem]:
    """What the experts can and cannot do right now, each with its reason; no queries beyond its inputs.

    ``scope`` is ``permissions.selectors.device_scope``: the device groups are
    asked about one by one through ``can_experts`` (a DeviceGroup target), so
    the panel and the provider's attempts can never disagree. ``exclusions`` and
    ``excluded`` are ``exclusions.selectors.exclusion_rules`` and ``exclusion_counts``.
    """
    items: list[EffectiveItem] = []
    view = can_experts(tenant, ExpertAction.VIEW_INCIDENTS, snapshot=snapshot, exclusions=exclusions)
    items.append(EffectiveItem("view_incidents", "View incidents", "allowed" if view else "refused", view.reason))

    def device_item(key: str, title: str, action: ExpertAction, what: str) -> EffectiveItem:
        groups = device_group_decisions(
            tenant=tenant, action=action, snapshot=snapshot, scope=scope, exclusions=exclusions
        )
        overall = groups.overall
        if not overall.allowed:
            return EffectiveItem(key, title, "refused", overall.reason)
        # One line per device group, each decided by can_experts on that group.
        children: list[tuple[str, bool, str, bool]] = [
            (f"{group.name} ({_devices(group.devices)})", d.allowed, d.reason, d.guidance)
            for group, d in groups.decisions
        ]
        if children:
            n = scope.ungrouped_devices
            children.append((f"Devices not in any device group ({_devices(n)})", True, overall.reason, False))
        if all(allowed for _, allowed, _, _ in children):
            total = scope.total_devices
            return EffectiveItem(
                key,
                title,
                "allowed",
                f"{overall.reason} Applies to "
                + (f"all {total:,} devices" if total != 1 else "the tenant's one device")
                + (", including every device group." if scope.groups else "."),
                tuple(children),
            )
        reasons = []
        if groups.out_of_reach:
            reasons.append(f"Our experts can {what} only devices outside device groups: {groups.out_of_reach_reason}")
        if groups.guided:
            reasons.append(
                f"{_devices(groups.guided)} in excluded device groups get remediation guidance instead of "
                "response actions."
            )
        return EffectiveItem(key, title, "partial", " ".join(reasons), tuple(children))

    items.append(
        device_item("investigate_devices", "Investigate devices", ExpertAction.INVESTIGATE_DEVICE, "investigate")
    )
    items.append(
        device_item(
            "response_actions",
            "Run response actions such as isolating a device, running an antivirus scan or stopping and "
            "quarantining a file",
            ExpertAction.ISOLATE_DEVICE,
            "take response actions on",
        )
    )
    ids = can_experts(tenant, ExpertAction.SEE_IDENTITIES, snapshot=snapshot, exclusions=exclusions)
    items.append(EffectiveItem("see_identities", "See identities", "allowed" if ids else "refused", ids.reason))
    items.append(_excluded_item(excluded))
    return items


def _excluded_item(excluded: ExclusionCounts) -> EffectiveItem:
    """How many devices and users the experts only advise on (they are still investigated and protected)."""
    title = "Excluded from remediation"
    users = f"{excluded.users:,} user{'s' if excluded.users != 1 else ''}"
    high_value = (
        " All high-value devices and users are excluded, including those tagged later."
        if (excluded.exclude_high_value)
        else ""
    )
    if not excluded.devices and not excluded.users:
        return EffectiveItem(
            "excluded", title, "allowed", "No device or user is excluded from remediation." + high_value
        )
    return EffectiveItem(
        "excluded",
        title,
        "guidance",
        f"{_devices(excluded.devices)} and {users} are excluded from remediation: our experts give you remediation "
        "guidance for them instead of taking response actions. They are still investigated and protected." + high_value,
    )
