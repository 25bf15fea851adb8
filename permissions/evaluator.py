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
4. Response actions run through the Defender for Endpoint sensor, so the
   device must be onboarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from environment.models import Device, DeviceGroup, OnboardingState
from permissions.models import AccessLevel, AccessState
from permissions.selectors import AccessSnapshot, access_snapshot
from tenancy.models import Tenant


class ExpertAction(models.TextChoices):
    VIEW_INCIDENTS = "view_incidents", "View incidents"
    INVESTIGATE_DEVICE = "investigate_device", "Investigate a device"
    ISOLATE_DEVICE = "isolate_device", "Isolate a device"
    RUN_ANTIVIRUS_SCAN = "run_antivirus_scan", "Run an antivirus scan"
    STOP_AND_QUARANTINE_FILE = "stop_and_quarantine_file", "Stop and quarantine a file"
    SEE_IDENTITIES = "see_identities", "See identities"


RESPONSE_ACTIONS = frozenset(
    {ExpertAction.ISOLATE_DEVICE, ExpertAction.RUN_ANTIVIRUS_SCAN, ExpertAction.STOP_AND_QUARANTINE_FILE}
)
DEVICE_ACTIONS = RESPONSE_ACTIONS | {ExpertAction.INVESTIGATE_DEVICE}

INVESTIGATE = AccessLevel.INVESTIGATE.label
RESPOND = AccessLevel.RESPOND.label
ALL_DEVICES = "Access security data from all devices"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    action: str
    code: str  # a stable key for tests and logs

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def action_label(self) -> str:
        return ExpertAction(self.action).label


def _until(snap: AccessSnapshot, level: str) -> str:
    g = snap.live[level]
    return f"{g.level_label} ({g.role_label}) is granted until {g.ends_at:%d %b %Y}"


def can_experts(tenant: Tenant, action: str, target: Any = None, *, snapshot: AccessSnapshot | None = None) -> Decision:
    """Whether the provider's experts may perform ``action`` on ``target`` now, and why."""
    try:
        act = ExpertAction(action)
    except ValueError:
        return Decision(False, f"“{action}” isn't an action the experts can take.", str(action), "unknown_action")
    snap = snapshot or access_snapshot(tenant=tenant)

    def no(reason: str, code: str) -> Decision:
        return Decision(False, reason, act.value, code)

    def yes(reason: str) -> Decision:
        return Decision(True, reason, act.value, "allowed")

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


# --- The Effective access panel -------------------------------------------------------


@dataclass(frozen=True)
class EffectiveItem:
    key: str
    title: str
    status: str  # "allowed" | "refused" | "partial"
    reason: str
    children: tuple[tuple[str, bool, str], ...] = ()  # (label, allowed, reason)

    @property
    def status_label(self) -> str:
        return {"allowed": "Allowed", "refused": "Not allowed", "partial": "Limited"}[self.status]


def effective_access(*, tenant: Tenant, snapshot: AccessSnapshot, scope: Any) -> list[EffectiveItem]:
    """What the experts can and cannot do right now, each with its reason; no queries beyond its inputs.

    ``scope`` is ``permissions.selectors.device_scope``: the device groups are
    asked about one by one through ``can_experts`` (a DeviceGroup target), so
    the panel and the provider's attempts can never disagree.
    """
    items: list[EffectiveItem] = []
    view = can_experts(tenant, ExpertAction.VIEW_INCIDENTS, snapshot=snapshot)
    items.append(EffectiveItem("view_incidents", "View incidents", "allowed" if view else "refused", view.reason))

    def device_item(key: str, title: str, action: ExpertAction, what: str) -> EffectiveItem:
        overall = can_experts(tenant, action, None, snapshot=snapshot)
        if not overall.allowed:
            return EffectiveItem(key, title, "refused", overall.reason)
        # One line per device group, each decided by can_experts on that group.
        children: list[tuple[str, bool, str]] = []
        for group in scope.groups:
            target = DeviceGroup(pk=group.pk, tenant_id=tenant.pk, name=group.name)
            d = can_experts(tenant, action, target, snapshot=snapshot)
            children.append(
                (f"{group.name} ({group.devices:,} device{'s' if group.devices != 1 else ''})", d.allowed, d.reason)
            )
        if children:
            n = scope.ungrouped_devices
            children.append(
                (f"Devices not in any device group ({n:,} device{'s' if n != 1 else ''})", True, overall.reason)
            )
        if all(allowed for _, allowed, _ in children):
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
        return EffectiveItem(
            key,
            title,
            "partial",
            f"Our experts can {what} only devices outside device groups: {ALL_DEVICES} is off, which puts "
            f"{scope.devices_out_of_reach:,} device{'s' if scope.devices_out_of_reach != 1 else ''} in "
            f"{len(scope.groups)} device group{'s' if len(scope.groups) != 1 else ''} out of reach.",
            tuple(children),
        )

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
    ids = can_experts(tenant, ExpertAction.SEE_IDENTITIES, snapshot=snapshot)
    items.append(EffectiveItem("see_identities", "See identities", "allowed" if ids else "refused", ids.reason))
    return items
