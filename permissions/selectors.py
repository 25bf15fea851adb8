"""Reads of a tenant's provider access. Nothing here writes.

A tenant that has never opened its permissions has no relationship row yet;
the selectors then describe the defaults the row will be created with
(PENDING, all devices on, version 1), so reads never need to write.

Everything a page needs comes from ``access_snapshot``: two queries whatever
the history (the relationship, and the latest grant of each level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Max, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.selectors import recent_events
from environment.models import Device, DeviceTally, DirectoryUser
from exclusions.selectors import exclusion_counts, exclusion_rules
from permissions.models import AccessGrant, AccessLevel, AccessState, RevokedReason, ServiceProviderAccess
from tenancy.models import ProviderOrganization, Tenant

if TYPE_CHECKING:
    from audit.models import AuditEvent

# The reminder email goes out this long before a grant ends, and access health is no longer Active
# from then on: one threshold, so the banner and the email never disagree.
REMINDER_BEFORE = timedelta(days=7)
EXPIRING_WITHIN = REMINDER_BEFORE


def days_left(ends_at: datetime, now: datetime) -> int:
    """Whole days until ``ends_at``, rounded up (ending in 3 hours is "1 day left")."""
    seconds = (ends_at - now).total_seconds()
    return max(0, math.ceil(seconds / 86400))


@dataclass(frozen=True)
class GrantInfo:
    pk: int
    level: str
    level_label: str
    role_label: str
    starts_at: datetime
    ends_at: datetime
    days_left: int
    granted_by: str
    renewed_at: datetime | None
    reminder_sent_at: datetime | None

    @property
    def expiring(self) -> bool:
        return self.days_left <= EXPIRING_WITHIN.days


@dataclass(frozen=True)
class EndedGrantInfo:
    level: str
    level_label: str
    ended_at: datetime
    reason: str
    reason_label: str


@dataclass(frozen=True)
class AccessSnapshot:
    """Everything about a tenant's provider access at one instant."""

    tenant: Tenant
    access: ServiceProviderAccess
    now: datetime
    # Live, not yet ended grants by level (a grant past its end date that the
    # sweep hasn't reached yet is already treated as ended).
    live: dict[str, GrantInfo] = field(default_factory=dict)
    # The most recent ended grant of each level that is now off.
    ended: dict[str, EndedGrantInfo] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return self.access.state

    @property
    def active(self) -> bool:
        return self.access.state == AccessState.ACTIVE

    def has(self, level: str) -> bool:
        return self.active and level in self.live


def _relationship(tenant: Tenant) -> ServiceProviderAccess:
    access = (
        ServiceProviderAccess.objects.select_related("provider", "granted_by", "removed_by")
        .filter(tenant_id=tenant.pk)
        .first()
    )
    if access is None:
        # Not created yet: describe the defaults without writing (see module docstring).
        access = ServiceProviderAccess(tenant=tenant, provider_id=tenant.provider_id)
    return access


def _latest_grants(tenant: Tenant) -> QuerySet[AccessGrant]:
    """The newest grant of each level, in one query (a live grant is always the newest)."""
    newest = AccessGrant.objects.filter(tenant_id=tenant.pk).values("level").annotate(newest=Max("id")).values("newest")
    return AccessGrant.objects.select_related("granted_by").filter(id__in=Subquery(newest))


def _build_snapshot(
    tenant: Tenant, access: ServiceProviderAccess, grants: list[AccessGrant], now: datetime
) -> AccessSnapshot:
    live: dict[str, GrantInfo] = {}
    ended: dict[str, EndedGrantInfo] = {}
    for g in grants:
        if g.revoked_at is None and g.ends_at > now:
            live[g.level] = GrantInfo(
                pk=g.pk,
                level=g.level,
                level_label=g.get_level_display(),
                role_label=g.get_role_display(),
                starts_at=g.starts_at,
                ends_at=g.ends_at,
                days_left=days_left(g.ends_at, now),
                granted_by=str(g.granted_by) if g.granted_by else "system",
                renewed_at=g.renewed_at,
                reminder_sent_at=g.reminder_sent_at,
            )
        else:
            reason = g.revoked_reason or RevokedReason.EXPIRED  # past its end, sweep not yet run
            ended[g.level] = EndedGrantInfo(
                level=g.level,
                level_label=g.get_level_display(),
                ended_at=g.revoked_at or g.ends_at,
                reason=reason,
                reason_label=RevokedReason(reason).label,
            )
    return AccessSnapshot(tenant=tenant, access=access, now=now, live=live, ended=ended)


def access_snapshot(*, tenant: Tenant, now: datetime | None = None) -> AccessSnapshot:
    now = now or timezone.now()
    access = _relationship(tenant)
    grants = list(_latest_grants(tenant)) if access.pk is not None else []
    return _build_snapshot(tenant, access, grants, now)


@dataclass(frozen=True)
class AccessLevelsState:
    """The contract other apps read (the Get started guide, Service status)."""

    investigate: bool
    respond: bool
    version: int
    all_devices: bool
    state: str
    state_label: str
    provider_name: str
    granted_by: str
    granted_at: datetime | None
    removed_by: str
    removed_at: datetime | None
    grants: dict[str, GrantInfo]

    @property
    def provider_access_granted(self) -> bool:
        return self.state == AccessState.ACTIVE

    @property
    def removed(self) -> bool:
        return self.state == AccessState.REMOVED

    @property
    def any_level(self) -> bool:
        return self.investigate or self.respond


def access_levels_state(*, tenant: Tenant, snapshot: AccessSnapshot | None = None) -> AccessLevelsState:
    snap = snapshot or access_snapshot(tenant=tenant)
    access = snap.access
    provider: ProviderOrganization | None = access.provider if access.pk else None
    return AccessLevelsState(
        investigate=snap.has(AccessLevel.INVESTIGATE),
        respond=snap.has(AccessLevel.RESPOND),
        version=access.version,
        all_devices=access.all_devices,
        state=access.state,
        state_label=AccessState(access.state).label,
        provider_name=provider.name if provider else (tenant.provider.name if tenant.provider_id else ""),
        granted_by=str(access.granted_by) if access.granted_by_id else "",
        granted_at=access.granted_at,
        removed_by=str(access.removed_by) if access.removed_by_id else "",
        removed_at=access.removed_at,
        grants=dict(snap.live) if snap.active else {},
    )


def provider_access_granted(*, tenant: Tenant) -> bool:
    """Whether the cross-tenant relationship is active (one query)."""
    return ServiceProviderAccess.objects.filter(tenant_id=tenant.pk, state=AccessState.ACTIVE).exists()


@dataclass(frozen=True)
class AccessHealth:
    # "active" | "expiring" | "limited" (reach below what readiness needs) | "unreachable" (no device in
    # reach) | "expired" | "removed" | "none"
    state: str
    message: str
    ends_at: datetime | None = None
    days_left: int | None = None
    # The banner's title, and what to do about it (shown with the message).
    fix: str = ""

    @property
    def needs_attention(self) -> bool:
        return self.state in {"expiring", "limited", "unreachable", "expired", "removed"}

    @property
    def tone(self) -> str:
        return {
            "active": "success",
            "expiring": "warning",
            "limited": "warning",
            "unreachable": "error",
            "expired": "error",
            "removed": "error",
            # Not granted: the experts reach nothing, which is never shown as anything but an error.
            "none": "error",
        }[self.state]

    @property
    def label(self) -> str:
        return {
            "active": "Active",
            "expiring": "Expiring soon",
            "limited": "Limited reach",
            "unreachable": "No devices in reach",
            "expired": "Expired",
            "removed": "Removed",
            "none": "Not granted",
        }[self.state]

    @property
    def title(self) -> str:
        return {
            "expiring": "Defender Experts access is expiring",
            "limited": "Our experts can't reach all your devices",
            "unreachable": "Our experts can't reach any of your devices",
            "expired": "Defender Experts access has expired",
            "removed": "Service provider access was removed",
            "none": "Service provider access hasn't been granted",
        }.get(self.state, "Access health: Active")


def _plural_days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def access_health(
    *, tenant: Tenant, snapshot: AccessSnapshot | None = None, scope: DeviceScope | None = None
) -> AccessHealth:
    """Whether the experts' access lets them protect the tenant: Active only when service provider
    access is active, the chosen levels are granted and none ends within 7 days, and the experts
    reach at least ``READINESS_REQUIRED_REACH`` percent of the devices.

    Reach is ``permissions.evaluator.device_reach`` (what the Effective access panel shows), from
    ``scope`` (``device_scope``, read here if not given: one query).

    A level that ended by reaching its end date and hasn't been granted again
    counts as "expired" even if the other level is still live: losing part of
    the access is exactly what nobody should discover by accident.
    """
    # The evaluator reads this module's snapshot, so it is imported where used.
    from permissions.evaluator import ALL_DEVICES, device_reach

    snap = snapshot or access_snapshot(tenant=tenant)
    access = snap.access
    if access.state == AccessState.REMOVED:
        when = f" on {access.removed_at:%d %b %Y}" if access.removed_at else ""
        who = f" by {access.removed_by}" if access.removed_by_id else ""
        return AccessHealth(
            state="removed",
            message=(
                f"Service provider access was removed{who}{when}. Our experts can't monitor or respond to threats "
                "in your organization until an administrator restores it."
            ),
        )
    if access.state != AccessState.ACTIVE:
        return AccessHealth(
            state="none",
            message="Service provider access hasn't been granted yet. Our experts can't sign in to your tenant.",
        )
    expired = [e for level, e in snap.ended.items() if e.reason == RevokedReason.EXPIRED and level not in snap.live]
    if expired:
        names = " and ".join(e.level_label for e in expired)
        ended_at = max(e.ended_at for e in expired)
        return AccessHealth(
            state="expired",
            message=(
                f"Access level {names} expired on {ended_at:%d %b %Y}. Grant it again in Settings > Defender Experts "
                "> Permissions so our experts can keep protecting your organization."
            ),
            ends_at=ended_at,
            days_left=0,
        )
    if not snap.live:
        return AccessHealth(
            state="none",
            message="No access level is granted, so our experts can't investigate incidents or respond to threats.",
        )
    reach = device_reach(
        tenant=tenant, snapshot=snap, scope=scope if scope is not None else device_scope(tenant=tenant)
    )
    fix = (
        f"Turn on {ALL_DEVICES} in Settings > Defender Experts > Permissions, or move the devices out of their "
        "device groups."
    )
    if reach.total and not reach.reachable:
        return AccessHealth(
            state="unreachable",
            message=f"Our experts can't reach any of your {reach.total:,} devices: {reach.reason}",
            fix=fix,
        )
    required = settings.READINESS_REQUIRED_REACH
    if reach.percent < required:
        return AccessHealth(
            state="limited",
            message=(
                f"Our experts can reach {reach.reachable:,} of your {reach.total:,} devices ({reach.percent}%); "
                f"readiness needs {required}%. {reach.reason}"
            ),
            fix=fix,
        )
    first = min(snap.live.values(), key=lambda g: g.ends_at)
    if first.ends_at - snap.now <= EXPIRING_WITHIN:
        return AccessHealth(
            state="expiring",
            message=(
                f"Access level {first.level_label} ends on {first.ends_at:%d %b %Y} "
                f"({_plural_days(first.days_left)} left). Renew it in Settings > Defender Experts > Permissions."
            ),
            ends_at=first.ends_at,
            days_left=first.days_left,
        )
    return AccessHealth(
        state="active",
        message=f"Service provider access is active. The next access level ends on {first.ends_at:%d %b %Y}.",
        ends_at=first.ends_at,
        days_left=first.days_left,
    )


@dataclass(frozen=True)
class DeviceGroupReach:
    pk: int
    name: str
    devices: int


@dataclass(frozen=True)
class DeviceScope:
    """The tenant's device groups and what turning off all-devices puts out of reach."""

    groups: list[DeviceGroupReach]
    ungrouped_devices: int

    @property
    def devices_out_of_reach(self) -> int:
        return sum(g.devices for g in self.groups)

    @property
    def total_devices(self) -> int:
        return self.devices_out_of_reach + self.ungrouped_devices


def device_scope_queryset(*, tenant: Tenant) -> QuerySet[Any]:
    """One query, whatever the data: a row per device group with its device count,
    each carrying the tenant's ungrouped-device count (a tenant without groups
    gets one row with no group, through the LEFT JOIN from the tenant).

    Both counts are sums of ``DeviceTally`` rows (a handful per group, kept by the
    device table's triggers), so no device is counted on a view.
    """
    per_group = (
        DeviceTally.objects.filter(tenant_id=tenant.pk, group_key=OuterRef("device_groups__pk"))
        .order_by()
        .values("tenant_id")
        .annotate(c=Sum("devices"))
        .values("c")
    )
    ungrouped = (
        DeviceTally.objects.filter(tenant_id=tenant.pk, group_key=0)
        .order_by()
        .values("tenant_id")
        .annotate(c=Sum("devices"))
        .values("c")
    )
    return (
        Tenant.objects.filter(pk=tenant.pk)
        .annotate(n=Coalesce(Subquery(per_group), 0), ungrouped=Coalesce(Subquery(ungrouped), 0))
        .order_by("device_groups__rank", "device_groups__name")
        .values("device_groups__pk", "device_groups__name", "n", "ungrouped")
    )


def device_scope(*, tenant: Tenant) -> DeviceScope:
    """The groups out of reach when all-devices is off, from one aggregate query."""
    rows: list[dict[str, Any]] = list(device_scope_queryset(tenant=tenant))
    return DeviceScope(
        groups=[
            DeviceGroupReach(pk=r["device_groups__pk"], name=r["device_groups__name"], devices=r["n"])
            for r in rows
            if r["device_groups__pk"] is not None
        ],
        ungrouped_devices=rows[0]["ungrouped"] if rows else 0,
    )


def device_scopes(*, tenant_ids: list[int]) -> dict[int, DeviceScope]:
    """``device_scope`` of many tenants in one query over the device tally (each group's devices, by
    group key; the group names aren't needed to count what is in reach)."""
    scopes: dict[int, DeviceScope] = {t: DeviceScope(groups=[], ungrouped_devices=0) for t in tenant_ids}
    rows = (
        DeviceTally.objects.filter(tenant_id__in=tenant_ids)
        .order_by()
        .values("tenant_id", "group_key")
        .annotate(n=Sum("devices"))
        .values_list("tenant_id", "group_key", "n")
    )
    for tenant_id, group_key, n in rows:
        scope = scopes[tenant_id]
        if group_key:
            scope.groups.append(DeviceGroupReach(pk=group_key, name="", devices=n))
        else:
            scopes[tenant_id] = DeviceScope(groups=scope.groups, ungrouped_devices=n)
    return scopes


@dataclass(frozen=True)
class TenantAccessRow:
    tenant: Tenant
    state: AccessLevelsState
    health: AccessHealth


def provider_tenants_access(*, organization: ProviderOrganization) -> list[TenantAccessRow]:
    """Each tenant the provider serves with the access it holds now: four queries for any number of tenants."""
    tenants = list(Tenant.objects.filter(provider=organization).select_related("provider").order_by("name", "pk"))
    ids = [t.pk for t in tenants]
    rels = {
        a.tenant_id: a
        for a in ServiceProviderAccess.objects.select_related("provider", "granted_by", "removed_by").filter(
            tenant_id__in=ids
        )
    }
    newest = (
        AccessGrant.objects.filter(tenant_id=OuterRef("tenant_id"), level=OuterRef("level"))
        .order_by("-id")
        .values("id")[:1]
    )
    by_tenant: dict[int, list[AccessGrant]] = {}
    for g in AccessGrant.objects.select_related("granted_by").filter(tenant_id__in=ids, id=Subquery(newest)):
        by_tenant.setdefault(g.tenant_id, []).append(g)
    scopes = device_scopes(tenant_ids=ids)
    now = timezone.now()
    rows: list[TenantAccessRow] = []
    for t in tenants:
        access = rels.get(t.pk) or ServiceProviderAccess(tenant=t, provider_id=t.provider_id)
        snap = _build_snapshot(t, access, by_tenant.get(t.pk, []), now)
        rows.append(
            TenantAccessRow(
                tenant=t,
                state=access_levels_state(tenant=t, snapshot=snap),
                health=access_health(tenant=t, snapshot=snap, scope=scopes[t.pk]),
            )
        )
    return rows


@dataclass(frozen=True)
class PermissionsPage:
    """Everything the Permissions page shows, from one snapshot: two queries for
    the access, one for the device groups, five for the exclusions and one for the recent history."""

    state: AccessLevelsState
    health: AccessHealth
    scope: DeviceScope
    effective: list[Any]  # permissions.evaluator.EffectiveItem (that module imports this one)
    history: list[AuditEvent]

    @property
    def grants(self) -> list[GrantInfo]:
        return sorted(self.state.grants.values(), key=lambda g: g.level)

    @property
    def initial_levels(self) -> dict[str, Any]:
        # Seed: Investigate incidents and guide my responses is the default
        # choice, preselected whenever access is being granted or restored.
        state = self.state
        investigate = state.investigate if state.provider_access_granted else True
        return {
            "investigate": investigate,
            "respond": state.respond,
            "version": state.version,
            "investigate_was": state.investigate,
            "respond_was": state.respond,
            "all_devices": state.all_devices,
            "all_devices_shown": True,
        }

    @property
    def levels_action(self) -> str:
        # One form chooses the access levels in every state; after a removal it restores access.
        return "restore" if self.state.removed else "levels"

    @property
    def can_grant_more(self) -> bool:
        # Durations only matter for a level that can still be turned on.
        state = self.state
        return not (state.provider_access_granted and state.investigate and state.respond)


PERMISSIONS_HISTORY = 10


def permissions_page(*, tenant: Tenant) -> PermissionsPage:
    # The evaluator reads this module's snapshot, so it is imported where used.
    from permissions.evaluator import effective_access

    snapshot = access_snapshot(tenant=tenant)
    scope = device_scope(tenant=tenant)
    rules = exclusion_rules(tenant=tenant)
    return PermissionsPage(
        state=access_levels_state(tenant=tenant, snapshot=snapshot),
        health=access_health(tenant=tenant, snapshot=snapshot, scope=scope),
        scope=scope,
        effective=effective_access(
            tenant=tenant,
            snapshot=snapshot,
            scope=scope,
            exclusions=rules,
            excluded=exclusion_counts(tenant=tenant, rules=rules),
        ),
        history=recent_events(tenant=tenant, action_prefix="permissions.", limit=PERMISSIONS_HISTORY),
    )


def device_named(*, tenant: Tenant, name: str) -> Device | None:
    """The tenant's device called ``name`` (with its group), for the provider's "attempt an action"."""
    return Device.objects.select_related("device_group").filter(tenant=tenant, name=name).first()


def provider_access_of(tenant: Any) -> QuerySet[ServiceProviderAccess]:
    """The service provider access row of ``tenant`` (a tenant, an id or ``OuterRef(...)``), for other apps'
    subqueries: its ``updated_at`` is when access last changed."""
    return ServiceProviderAccess.objects.filter(tenant_id=tenant)


def directory_user_named(*, tenant: Tenant, upn: str) -> DirectoryUser | None:
    """The tenant's directory user with this user principal name, for the provider's "attempt an action"."""
    return DirectoryUser.objects.filter(tenant=tenant, user_principal_name=upn.strip().lower()).first()
