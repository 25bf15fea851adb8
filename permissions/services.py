"""Changing a tenant's provider access. Every change:

* locks the relationship row first (``select_for_update``), so changes to one
  tenant's access are serialised and always take locks in the same order
  (relationship, then grants) — the sweeps follow the same order;
* checks the caller's ``expected_version`` and raises ``StaleEdit`` on a
  mismatch, before anything is written;
* bumps ``version`` and writes an audit row with before and after values in
  the same transaction, stamped with the requester's IP by the request context
  (``core.context``); the sweeps act as "system" and record none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from audit.services import SystemEvent, audit_record, audit_record_system_events
from environment.models import Device, DirectoryUser
from outbox.services import outbox_enqueue
from permissions.durations import default_end, is_valid_end
from permissions.evaluator import Decision, ExpertAction, can_experts
from permissions.exceptions import (
    AllDevicesNeedsConfirmation,
    GrantNotLive,
    InvalidEndDate,
    ProviderAccessNotActive,
    ProviderAccessRemoved,
    ReauthenticationRequired,
    ReducedAccessNeedsConfirmation,
    StaleEdit,
)
from permissions.models import (
    LEVEL_ROLE,
    AccessGrant,
    AccessLevel,
    AccessState,
    GrantRole,
    RevokedReason,
    ServiceProviderAccess,
)
from permissions.selectors import (
    REMINDER_BEFORE,
    AccessLevelsState,
    access_levels_state,
    days_left,
)
from tenancy.models import Tenant, User
from tenancy.selectors import tenant_admin_emails

AUDIT_PREFIX = "permissions."


def provider_access_ensure(*, tenant: Tenant) -> ServiceProviderAccess:
    """The tenant's relationship row, created with its defaults on first use (see models docstring)."""
    try:
        access, _ = ServiceProviderAccess.objects.get_or_create(
            tenant_id=tenant.pk, defaults={"provider_id": tenant.provider_id}
        )
    except IntegrityError:  # a concurrent first use created it
        access = ServiceProviderAccess.objects.get(tenant_id=tenant.pk)
    return access


def _lock(
    *,
    tenant: Tenant,
    expected_version: int | None,
    already: Callable[[AccessLevelsState], bool] | None = None,
) -> ServiceProviderAccess | None:
    """The locked row, or ``StaleEdit`` when it changed since ``expected_version``.

    A stale form whose outcome ``already`` holds (a double submit, or two
    admins making the same change) overwrites nothing: ``None``, nothing to do.
    """
    provider_access_ensure(tenant=tenant)
    access = ServiceProviderAccess.objects.select_for_update().select_related("provider").get(tenant_id=tenant.pk)
    access.tenant = tenant
    if expected_version is not None and access.version != expected_version:
        current = access_levels_state(tenant=tenant)
        if already is not None and already(current):
            return None
        raise StaleEdit(current=current)
    return access


def _levels_dict(live: dict[str, AccessGrant]) -> dict[str, Any]:
    return {
        level: ({"on": True, "role": g.role, "ends_at": g.ends_at.isoformat()} if g else {"on": False})
        for level, g in ((lvl, live.get(lvl)) for lvl in AccessLevel.values)
    }


def _snapshot_dict(access: ServiceProviderAccess, live: dict[str, AccessGrant]) -> dict[str, Any]:
    return {"state": access.state, "all_devices": access.all_devices, "levels": _levels_dict(live)}


def _expire_overdue_for(access: ServiceProviderAccess, now: datetime) -> None:
    """Grants of a locked relationship that are past their end but not yet swept end now, as the sweep would."""
    ids = list(
        AccessGrant.objects.filter(access=access, revoked_at__isnull=True, ends_at__lte=now).values_list(
            "id", flat=True
        )
    )
    if ids:
        _expire_ids(ids, now)


def _live_grants(access: ServiceProviderAccess) -> dict[str, AccessGrant]:
    return {g.level: g for g in AccessGrant.objects.filter(access=access, revoked_at__isnull=True)}


def _bump(access: ServiceProviderAccess, fields: list[str]) -> None:
    access.version += 1
    access.save(update_fields=[*fields, "version", "updated_at"])


def _grant(
    *,
    access: ServiceProviderAccess,
    level: str,
    acting_user: User | None,
    now: datetime,
    ends_at: datetime,
) -> AccessGrant:
    grant = AccessGrant.objects.create(
        access=access,
        tenant_id=access.tenant_id,
        level=level,
        role=LEVEL_ROLE[level],
        starts_at=now,
        ends_at=ends_at,
        granted_by=acting_user,
    )
    audit_record(
        tenant=access.tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "level_granted",
        summary=(
            f"Access level {grant.get_level_display()} ({grant.get_role_display()}) granted until {ends_at:%d %b %Y}"
        ),
        target=grant,
        before={"level": level, "on": False},
        after={
            "level": level,
            "on": True,
            "role": grant.role,
            "starts_at": now.isoformat(),
            "ends_at": ends_at.isoformat(),
        },
    )
    return grant


def _revoke(
    *,
    access: ServiceProviderAccess,
    grant: AccessGrant,
    acting_user: User | None,
    now: datetime,
    reason: str,
) -> None:
    AccessGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_reason=reason, revoked_by=acting_user
    )
    audit_record(
        tenant=access.tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "level_revoked",
        summary=(
            f"Access level {grant.get_level_display()} ({grant.get_role_display()}) turned off"
            + ("" if reason == RevokedReason.TURNED_OFF else f": {RevokedReason(reason).label.lower()}")
        ),
        target=grant,
        before={"level": grant.level, "on": True, "role": grant.role, "ends_at": grant.ends_at.isoformat()},
        after={"level": grant.level, "on": False, "revoked_reason": reason},
    )


def _check_end(ends_at: datetime | None, now: datetime) -> datetime:
    if ends_at is None:
        return default_end(now)
    if not is_valid_end(ends_at, now=now):
        raise InvalidEndDate()
    return ends_at


def _activate(
    *,
    access: ServiceProviderAccess,
    acting_user: User | None,
    now: datetime,
    restoring: bool,
) -> None:
    before = {"state": access.state}
    access.state = AccessState.ACTIVE
    access.granted_by = acting_user
    access.granted_at = now
    access.removed_by = None
    access.removed_at = None
    audit_record(
        tenant=access.tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + ("provider_access_restored" if restoring else "provider_access_granted"),
        summary=("Service provider access restored" if restoring else "Service provider access granted")
        + f" to {access.provider.name}",
        target=access,
        before=before,
        after={"state": AccessState.ACTIVE.value, "provider": access.provider.name},
    )


def _apply_levels(
    *,
    access: ServiceProviderAccess,
    acting_user: User | None,
    investigate: bool,
    respond: bool,
    confirm_reduced_access: bool,
    recently_authenticated: bool,
    ends_at: datetime | None,
    now: datetime,
) -> bool:
    """Turn levels on and off on a locked, active-or-pending relationship. Returns whether anything changed."""
    _expire_overdue_for(access, now)
    live = _live_grants(access)
    was_inv, was_resp = AccessLevel.INVESTIGATE in live, AccessLevel.RESPOND in live
    # "The last level that lets experts act": losing Respond (response actions)
    # or losing every level (nothing at all) needs an explicit confirmation.
    reduced = (was_resp and not respond) or ((was_inv or was_resp) and not (investigate or respond))
    if reduced and not confirm_reduced_access:
        raise ReducedAccessNeedsConfirmation()
    if respond and not was_resp and not recently_authenticated:
        raise ReauthenticationRequired()
    wanted = {AccessLevel.INVESTIGATE: investigate, AccessLevel.RESPOND: respond}
    changed = False
    end = None
    for level, on in wanted.items():
        if on and level not in live:
            end = end or _check_end(ends_at, now)
            _grant(access=access, level=level, acting_user=acting_user, now=now, ends_at=end)
            changed = True
        elif not on and level in live:
            _revoke(
                access=access,
                grant=live[level],
                acting_user=acting_user,
                now=now,
                reason=RevokedReason.TURNED_OFF,
            )
            changed = True
    return changed


# The same duration chosen again moments later (a double submit) ends within this margin of the first.
SAME_END_MARGIN = timedelta(hours=1)


def _levels_already_as_asked(
    state: AccessLevelsState,
    *,
    investigate: bool,
    respond: bool,
    ends_at: datetime | None,
    levels_as_read: tuple[bool, bool] | None,
) -> bool:
    """Would this (stale) levels form change nothing if applied now?

    Only then is it a double submit. The levels must match, and so must the end
    date of every level the form turned on that was off when the form was read:
    choosing "1 year" for a level someone else has just granted for 30 days is a
    change. (A level that was already on keeps its own end date, as in any save.)
    Without ``levels_as_read`` every level that is on is taken as turned on by the form.
    """
    if not state.provider_access_granted or (state.investigate, state.respond) != (investigate, respond):
        return False
    if ends_at is None:
        return True
    was_on = levels_as_read or (False, False)
    for level, on, was in (
        (AccessLevel.INVESTIGATE, investigate, was_on[0]),
        (AccessLevel.RESPOND, respond, was_on[1]),
    ):
        if on and not was:
            grant = state.grants.get(level)
            if grant is None or abs(grant.ends_at - ends_at) > SAME_END_MARGIN:
                return False
    return True


@transaction.atomic
def access_levels_set(
    *,
    tenant: Tenant,
    acting_user: User | None,
    investigate: bool,
    respond: bool,
    expected_version: int,
    confirm_reduced_access: bool = False,
    recently_authenticated: bool = False,
    ends_at: datetime | None = None,
    levels_as_read: tuple[bool, bool] | None = None,
) -> AccessLevelsState:
    """Turn the access levels on or off (the guide's Permissions step and the Permissions page).

    New grants last until ``ends_at`` (default: 180 days, see ``durations``);
    levels that stay on keep their own end dates. Granting any level while
    access is PENDING also grants the relationship itself. While access is
    REMOVED nothing can be granted (``ProviderAccessRemoved``): only an
    explicit restore brings the experts back.
    """
    now = timezone.now()
    access = _lock(
        tenant=tenant,
        expected_version=expected_version,
        already=lambda st: _levels_already_as_asked(
            st, investigate=investigate, respond=respond, ends_at=ends_at, levels_as_read=levels_as_read
        ),
    )
    if access is None:
        return access_levels_state(tenant=tenant)
    if access.state == AccessState.REMOVED:
        if investigate or respond:
            raise ProviderAccessRemoved()
        return access_levels_state(tenant=tenant)
    if respond and not recently_authenticated:
        # Checked before anything is written so a redirect to the password prompt loses nothing.
        live = _live_grants(access)
        if AccessLevel.RESPOND not in live or live[AccessLevel.RESPOND].ends_at <= now:
            raise ReauthenticationRequired()
    fields: list[str] = []
    if access.state == AccessState.PENDING and (investigate or respond):
        _activate(access=access, acting_user=acting_user, now=now, restoring=False)
        fields += ["state", "granted_by", "granted_at", "removed_by", "removed_at"]
    changed = _apply_levels(
        access=access,
        acting_user=acting_user,
        investigate=investigate,
        respond=respond,
        confirm_reduced_access=confirm_reduced_access,
        recently_authenticated=recently_authenticated,
        ends_at=ends_at,
        now=now,
    )
    if changed or fields:
        _bump(access, fields)
    return access_levels_state(tenant=tenant)


@transaction.atomic
def provider_access_restore(
    *,
    tenant: Tenant,
    acting_user: User,
    expected_version: int,
    investigate: bool,
    respond: bool,
    recently_authenticated: bool = False,
    ends_at: datetime | None = None,
) -> AccessLevelsState:
    """Grant (from PENDING) or restore (from REMOVED) service provider access with the chosen levels."""
    now = timezone.now()
    # A stale restore is a double submit only if access is active again with exactly
    # these levels and end dates (every level it asks for is one it turns on).
    access = _lock(
        tenant=tenant,
        expected_version=expected_version,
        already=lambda st: _levels_already_as_asked(
            st, investigate=investigate, respond=respond, ends_at=ends_at, levels_as_read=(False, False)
        ),
    )
    if access is None:
        return access_levels_state(tenant=tenant)
    if access.state == AccessState.ACTIVE:
        raise ProviderAccessNotActive("Service provider access is already active.")
    if respond and not recently_authenticated:
        raise ReauthenticationRequired()
    _check_end(ends_at, now)
    _activate(
        access=access,
        acting_user=acting_user,
        now=now,
        restoring=access.state == AccessState.REMOVED,
    )
    _apply_levels(
        access=access,
        acting_user=acting_user,
        investigate=investigate,
        respond=respond,
        confirm_reduced_access=True,
        recently_authenticated=recently_authenticated,
        ends_at=ends_at,
        now=now,
    )
    _bump(access, ["state", "granted_by", "granted_at", "removed_by", "removed_at"])
    return access_levels_state(tenant=tenant)


@transaction.atomic
def provider_access_remove(*, tenant: Tenant, acting_user: User, expected_version: int) -> AccessLevelsState:
    """Remove the provider's access entirely: every grant ends now and the evaluator refuses everything."""
    now = timezone.now()
    access = _lock(tenant=tenant, expected_version=expected_version, already=lambda st: st.removed)
    if access is None or access.state == AccessState.REMOVED:
        return access_levels_state(tenant=tenant)
    live = _live_grants(access)
    before = _snapshot_dict(access, live)
    for grant in live.values():
        _revoke(
            access=access,
            grant=grant,
            acting_user=acting_user,
            now=now,
            reason=RevokedReason.ACCESS_REMOVED,
        )
    access.state = AccessState.REMOVED
    access.removed_by = acting_user
    access.removed_at = now
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "provider_access_removed",
        summary=(
            f"Service provider access removed from {access.provider.name}; experts' monitoring and response stopped"
        ),
        target=access,
        before=before,
        after=_snapshot_dict(access, {}),
    )
    _bump(access, ["state", "removed_by", "removed_at"])
    return access_levels_state(tenant=tenant)


@transaction.atomic
def access_settings_save(
    *,
    tenant: Tenant,
    acting_user: User,
    investigate: bool,
    respond: bool,
    all_devices: bool | None,
    expected_version: int,
    confirm: bool = False,
    recently_authenticated: bool = False,
    ends_at: datetime | None = None,
    levels_as_read: tuple[bool, bool] | None = None,
    restore: bool = False,
) -> AccessLevelsState:
    """The Permissions page's one Save: the access levels and, under them, Access security data from all devices.

    One version covers both, so a form read before anyone else's change is a ``StaleEdit`` unless everything it
    asks for already holds (a double submit). Turning all devices off needs confirmation like reducing the levels
    does (``confirm`` answers both), asked before anything is written. ``all_devices`` is ``None`` for a form that
    doesn't show the switch: it stays as it is. ``restore``: the levels restore removed access
    (``provider_access_restore``) instead of being set. Each part is audited by its own service.
    """

    def as_asked(state: AccessLevelsState) -> bool:
        as_read = (False, False) if restore else levels_as_read
        return (all_devices is None or state.all_devices == all_devices) and _levels_already_as_asked(
            state, investigate=investigate, respond=respond, ends_at=ends_at, levels_as_read=as_read
        )

    access = _lock(tenant=tenant, expected_version=expected_version, already=as_asked)
    if access is None:
        return access_levels_state(tenant=tenant)
    if all_devices is False and access.all_devices and not confirm:
        raise AllDevicesNeedsConfirmation()
    if restore:
        state = provider_access_restore(
            tenant=tenant,
            acting_user=acting_user,
            expected_version=expected_version,
            investigate=investigate,
            respond=respond,
            recently_authenticated=recently_authenticated,
            ends_at=ends_at,
        )
    else:
        state = access_levels_set(
            tenant=tenant,
            acting_user=acting_user,
            investigate=investigate,
            respond=respond,
            expected_version=expected_version,
            confirm_reduced_access=confirm,
            recently_authenticated=recently_authenticated,
            ends_at=ends_at,
            levels_as_read=levels_as_read,
        )
    if all_devices is not None and state.all_devices != all_devices:
        state = all_devices_set(
            tenant=tenant, acting_user=acting_user, enabled=all_devices, expected_version=state.version, confirm=True
        )
    return state


@transaction.atomic
def all_devices_set(
    *,
    tenant: Tenant,
    acting_user: User,
    enabled: bool,
    expected_version: int,
    confirm: bool = False,
) -> AccessLevelsState:
    """Turn Access security data from all devices on or off. Turning it off needs confirmation."""
    access = _lock(tenant=tenant, expected_version=expected_version, already=lambda st: st.all_devices == enabled)
    if access is None or access.all_devices == enabled:
        return access_levels_state(tenant=tenant)
    if not enabled and not confirm:
        raise AllDevicesNeedsConfirmation()
    access.all_devices = enabled
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "all_devices_changed",
        summary=f"Access security data from all devices turned {'on' if enabled else 'off'}",
        target=access,
        before={"all_devices": not enabled},
        after={"all_devices": enabled},
    )
    _bump(access, ["all_devices"])
    return access_levels_state(tenant=tenant)


@transaction.atomic
def access_grant_renew(
    *,
    tenant: Tenant,
    acting_user: User,
    grant_id: int,
    expected_version: int,
    ends_at: datetime,
    recently_authenticated: bool = False,
) -> AccessLevelsState:
    """Move a live grant's end date later. Extending Security Operator access counts as granting it again.

    A stale form is a double submit only if the grant already ends when this
    renewal asks (the same renewal sent twice, or two admins extending to the
    same date); any other stale renewal is a ``StaleEdit``.
    """
    now = timezone.now()

    def already(state: AccessLevelsState) -> bool:
        grant = next((g for g in state.grants.values() if g.pk == grant_id), None)
        return grant is not None and abs(grant.ends_at - ends_at) <= SAME_END_MARGIN

    access = _lock(tenant=tenant, expected_version=expected_version, already=already)
    if access is None:
        return access_levels_state(tenant=tenant)
    if access.state != AccessState.ACTIVE:
        raise ProviderAccessNotActive()
    _expire_overdue_for(access, now)
    grant = AccessGrant.objects.filter(pk=grant_id, access=access, revoked_at__isnull=True).first()
    if grant is None:
        raise GrantNotLive()
    if not is_valid_end(ends_at, now=now):
        raise InvalidEndDate()
    if ends_at <= grant.ends_at:
        raise InvalidEndDate(
            f"Choose an end date later than the current one ({grant.ends_at:%d %b %Y}); renewing extends access."
        )
    if grant.role == GrantRole.SECURITY_OPERATOR and not recently_authenticated:
        raise ReauthenticationRequired(
            "Extending Respond directly to active threats is sensitive. Confirm your password to continue."
        )
    before = {"level": grant.level, "ends_at": grant.ends_at.isoformat()}
    AccessGrant.objects.filter(pk=grant.pk).update(
        ends_at=ends_at, renewed_at=now, renewed_by=acting_user, reminder_sent_at=None
    )
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "level_renewed",
        summary=f"Access level {grant.get_level_display()} renewed until {ends_at:%d %b %Y}",
        target=grant,
        before=before,
        after={"level": grant.level, "ends_at": ends_at.isoformat()},
    )
    _bump(access, [])
    return access_levels_state(tenant=tenant)


# --- Sweeps ---------------------------------------------------------------------


def _expire_ids(ids: list[int], now: datetime) -> int:
    """End the given grants as expired: one conditional UPDATE, one bulk audit insert, one version bump."""
    updated = AccessGrant.objects.filter(id__in=ids, revoked_at__isnull=True, ends_at__lte=now).update(
        revoked_at=now, revoked_reason=RevokedReason.EXPIRED, revoked_by=None
    )
    if not updated:
        return 0
    grants = list(
        AccessGrant.objects.filter(id__in=ids, revoked_at=now, revoked_reason=RevokedReason.EXPIRED).order_by("id")
    )
    # The sweep may end many grants at once; audit rows go in with one
    # bulk insert, shaped exactly as audit_record writes them (actor "system").
    audit_record_system_events(
        events=[
            SystemEvent(
                tenant_id=g.tenant_id,
                action=AUDIT_PREFIX + "level_expired",
                summary=(
                    f"Access level {g.get_level_display()} ({g.get_role_display()}) ended: "
                    f"reached its end date {g.ends_at:%d %b %Y}"
                ),
                target=g,
                before={"level": g.level, "on": True, "role": g.role, "ends_at": g.ends_at.isoformat()},
                after={"level": g.level, "on": False, "revoked_reason": RevokedReason.EXPIRED.value},
            )
            for g in grants
        ],
        at=now,
    )
    ServiceProviderAccess.objects.filter(id__in={g.access_id for g in grants}).update(version=F("version") + 1)
    return len(grants)


def access_grants_expire_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """Beat sweep: end every grant whose end date has arrived. Idempotent.

    Relationship rows are claimed with ``SKIP LOCKED`` (the same lock order as
    every service), so a concurrent sweep or an admin editing that tenant is
    skipped rather than waited for, and the conditional UPDATE means a grant
    is never ended twice. Runs in batches until nothing is due.
    """
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            due_access = (
                AccessGrant.objects.filter(revoked_at__isnull=True, ends_at__lte=now)
                .order_by("access_id")
                .values("access_id")
                .distinct()[:batch]
            )
            claimed = list(
                ServiceProviderAccess.objects.filter(id__in=list(due_access.values_list("access_id", flat=True)))
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)
            )
            if not claimed:
                return total
            ids = list(
                AccessGrant.objects.filter(
                    access_id__in=claimed, revoked_at__isnull=True, ends_at__lte=now
                ).values_list("id", flat=True)
            )
            total += _expire_ids(ids, now)
        if len(claimed) < batch:
            return total


def access_grants_send_reminders(*, now: datetime | None = None, batch: int = 200) -> int:
    """Beat sweep: seven days before a grant ends, email the tenant's Global and Security Administrators once.

    Claimed like the expiry sweep; the grant's ``reminder_sent_at`` is set
    with a conditional UPDATE in the same transaction as the outbox row, and
    the outbox ``dedupe_key`` (grant and end date) makes a second message for
    the same end date impossible even if a row were processed twice. A
    renewal clears ``reminder_sent_at``, so the new end date gets its own.
    """
    now = now or timezone.now()
    sent = 0
    while True:
        with transaction.atomic():
            due = AccessGrant.objects.filter(
                revoked_at__isnull=True,
                reminder_sent_at__isnull=True,
                ends_at__gt=now,
                ends_at__lte=now + REMINDER_BEFORE,
                access__state=AccessState.ACTIVE,
            )
            claimed = list(
                ServiceProviderAccess.objects.filter(
                    id__in=list(due.order_by("access_id").values_list("access_id", flat=True).distinct()[:batch])
                )
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)
            )
            if not claimed:
                return sent
            grants = list(due.filter(access_id__in=claimed).select_related("tenant").order_by("tenant_id", "id"))
            AccessGrant.objects.filter(id__in=[g.pk for g in grants], reminder_sent_at__isnull=True).update(
                reminder_sent_at=now
            )
            # One email per tenant: levels granted together usually reach the
            # 7-day mark in the same sweep, and admins get one message about both.
            for _, tenant_grants in groupby(grants, key=lambda g: g.tenant_id):
                sent += _queue_reminder(grants=list(tenant_grants), now=now)
        if len(claimed) < batch:
            return sent


@dataclass(frozen=True)
class ReminderItem:
    """One access level in a reminder email (the templates read these fields)."""

    grant: AccessGrant
    level: str
    role: str
    ends_at: datetime
    days_left: int


def _queue_reminder(*, grants: list[AccessGrant], now: datetime) -> int:
    """Queue one reminder about ``grants`` (all of one tenant) and audit each; returns how many were reminded."""
    tenant = grants[0].tenant
    recipients = tenant_admin_emails(tenant)
    items = [
        ReminderItem(
            grant=g,
            level=g.get_level_display(),
            role=g.get_role_display(),
            ends_at=g.ends_at,
            days_left=days_left(g.ends_at, now),
        )
        for g in sorted(grants, key=lambda g: (g.ends_at, g.level))
    ]
    left = items[0].days_left
    when = f"{left} day{'s' if left != 1 else ''}"
    if recipients:
        outbox_enqueue(
            tenant=tenant,
            kind="permissions.expiry_reminder",
            to=recipients,
            subject=(
                f"Defender Experts access ends in {when}: {items[0].level}"
                if len(items) == 1
                else f"Defender Experts access ends in {when}: {len(items)} access levels"
            ),
            template="permissions/emails/expiry_reminder",
            context={"items": items, "days_left": left},
            # One message per set of grants and their end dates: re-running the
            # sweep can never queue it twice, and a renewal (new end) gets its own.
            dedupe_key="permissions.expiry_reminder:"
            + ",".join(f"{i.grant.pk}@{i.ends_at:%Y%m%d%H%M%S}" for i in items),
        )
    for item in items:
        audit_record(
            tenant=tenant,
            acting_user=None,
            action=AUDIT_PREFIX + "expiry_reminder_queued",
            summary=(
                f"Reminder queued: access level {item.level} ends on {item.ends_at:%d %b %Y}"
                if recipients
                else f"No administrator to remind: access level {item.level} ends on {item.ends_at:%d %b %Y}"
            ),
            target=item.grant,
            before=None,
            after={"level": item.grant.level, "ends_at": item.ends_at.isoformat(), "recipients": recipients},
        )
    return len(items) if recipients else 0


# --- Provider side ------------------------------------------------------------------


@transaction.atomic
def expert_action_attempt(
    *, tenant: Tenant, acting_user: User, action: str, device: Device | None = None, user: DirectoryUser | None = None
) -> Decision:
    """The provider's "attempt an action": ask the evaluator and log the outcome, allowed or refused.

    A refusal because the target is excluded from remediation is logged as guidance only.
    """
    target: Device | DirectoryUser | None = user if user is not None else device
    decision = can_experts(tenant, action, target)
    label = ExpertAction(action).label if action in ExpertAction.values else action
    on = ""
    if device is not None:
        on = f" on {device.name}"
    elif user is not None:
        on = f" on {user.user_principal_name}"
    outcome = "Allowed" if decision.allowed else ("Guidance only" if decision.guidance else "Refused")
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + ("expert_action_allowed" if decision.allowed else "expert_action_refused"),
        summary=f"{outcome}: {label}{on} by Defender Experts. {decision.reason}",
        target=target,
        before=None,
        after={
            "action": action,
            "device": device.name if device else None,
            "user": user.user_principal_name if user else None,
            "allowed": decision.allowed,
            "guidance": decision.guidance,
            "code": decision.code,
            "reason": decision.reason,
        },
    )
    return decision
