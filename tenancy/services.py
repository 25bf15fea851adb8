from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.errors import Conflict
from tenancy.models import (
    Membership,
    ProviderOrganization,
    ProviderStaff,
    ServicePhase,
    Tenant,
    TenantRole,
    User,
)
from tenancy.sessions import user_sessions_end

# The service moves forward one phase at a time.
PHASE_TRANSITIONS: dict[str, frozenset[str]] = {
    ServicePhase.NOT_INVITED: frozenset({ServicePhase.INVITED}),
    ServicePhase.INVITED: frozenset({ServicePhase.SETTING_UP}),
    ServicePhase.SETTING_UP: frozenset({ServicePhase.PREPARING}),
    ServicePhase.PREPARING: frozenset({ServicePhase.MONITORING}),
    ServicePhase.MONITORING: frozenset({ServicePhase.ACTIVE}),
    ServicePhase.ACTIVE: frozenset(),
}


class PhaseTransitionError(Conflict):
    """The tenant isn't in a phase that can move to the one asked for."""


@transaction.atomic
def tenant_change_phase(
    *, tenant: Tenant, acting_user: User | None, to_phase: ServicePhase | str, reason: str = ""
) -> Tenant:
    """Move a tenant to its next service phase, audited.

    The row is locked so two concurrent moves cannot both pass the check.
    """
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    current = locked.service_phase
    target = ServicePhase(to_phase)
    if target not in PHASE_TRANSITIONS[ServicePhase(current)]:
        raise PhaseTransitionError(
            f"{locked.name} is in the {ServicePhase(current).label} phase and can't move to {target.label}."
        )
    locked.service_phase = target
    locked.service_phase_changed_at = timezone.now()
    locked.save(update_fields=["service_phase", "service_phase_changed_at"])
    summary = f"Service phase changed from {ServicePhase(current).label} to {target.label}"
    if reason:
        summary += f" (reason: {reason})"
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="tenant.phase_changed",
        summary=summary,
        target=locked,
        before={"service_phase": current},
        after={"service_phase": target.value, "reason": reason} if reason else {"service_phase": target.value},
    )
    tenant.service_phase = locked.service_phase
    tenant.service_phase_changed_at = locked.service_phase_changed_at
    return locked


# --- Operators' changes (the Django admin) ---------------------------------------------------
# Tenants, members and accounts have no page in the portal; operators manage
# them in the admin, through these services, so each change is validated and
# audited in the tenant's log in the same transaction.


def _user_tenants(user: User) -> list[Tenant | None]:
    """The tenants whose log records a change to ``user``; none (the operators' log) for a user of no tenant."""
    return [*Tenant.objects.filter(memberships__user=user).order_by("pk")] or [None]


@transaction.atomic
def tenant_create(
    *, acting_user: User | None, name: str, primary_domain: str, provider: ProviderOrganization
) -> Tenant:
    tenant = Tenant.objects.create(name=name, primary_domain=primary_domain.lower(), provider=provider)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="tenant.created",
        summary=f"Organisation {tenant.name} ({tenant.primary_domain}) created for {provider.name}",
        target=tenant,
        after={"name": tenant.name, "primary_domain": tenant.primary_domain, "provider": provider.name},
    )
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, acting_user: User | None, name: str, primary_domain: str) -> Tenant:
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = {"name": locked.name, "primary_domain": locked.primary_domain}
    after = {"name": name, "primary_domain": primary_domain.lower()}
    if before == after:
        return locked
    locked.name, locked.primary_domain = after["name"], after["primary_domain"]
    locked.save(update_fields=["name", "primary_domain"])
    changed = {k: v for k, v in after.items() if before[k] != v}
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="tenant.updated",
        summary="Organisation details changed: " + ", ".join(f"{k} {before[k]} → {v}" for k, v in changed.items()),
        target=locked,
        before={k: before[k] for k in changed},
        after=changed,
    )
    return locked


def _role_label(role: str) -> str:
    return TenantRole(role).label


@transaction.atomic
def membership_add(*, tenant: Tenant, acting_user: User | None, user: User, role: str) -> Membership:
    role = TenantRole(role).value
    if Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValidationError(f"{user.email} is already a member of {tenant.name}.", code="duplicate_member")
    if ProviderStaff.objects.filter(user=user).exists():
        raise ValidationError(
            f"{user.email} is provider staff; staff never act as members of a tenant.", code="staff_member"
        )
    membership = Membership.objects.create(tenant=tenant, user=user, role=role)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="tenant.member_added",
        summary=f"{user.email} added as {_role_label(role)}",
        target=membership,
        after={"user": user.email, "role": role},
    )
    return membership


@transaction.atomic
def membership_set_role(*, membership: Membership, acting_user: User | None, role: str) -> Membership:
    """Change a member's role; their sessions end at once, so the new role applies from the next sign-in."""
    role = TenantRole(role).value
    locked = Membership.objects.select_for_update().select_related("user", "tenant").get(pk=membership.pk)
    before = locked.role
    if before == role:
        return locked
    locked.role = role
    locked.save(update_fields=["role"])
    ended = user_sessions_end(user=locked.user)
    audit_record(
        tenant=locked.tenant,
        acting_user=acting_user,
        action="tenant.member_role_changed",
        summary=f"{locked.user.email}: role changed from {_role_label(before)} to {_role_label(role)}; "
        f"{ended} session{'s' if ended != 1 else ''} signed out",
        target=locked,
        before={"user": locked.user.email, "role": before},
        after={"user": locked.user.email, "role": role, "sessions_ended": ended},
    )
    return locked


@transaction.atomic
def membership_remove(*, membership: Membership, acting_user: User | None) -> None:
    """Remove a member; their sessions end at once."""
    locked = Membership.objects.select_for_update().select_related("user", "tenant").get(pk=membership.pk)
    user = locked.user
    ended = user_sessions_end(user=user)
    audit_record(
        tenant=locked.tenant,
        acting_user=acting_user,
        action="tenant.member_removed",
        summary=f"{user.email} ({_role_label(locked.role)}) removed; "
        f"{ended} session{'s' if ended != 1 else ''} signed out",
        target=locked,
        before={"user": user.email, "role": locked.role},
        after={"sessions_ended": ended},
    )
    locked.delete()


USER_FIELDS = ("email", "display_name", "is_active", "is_superuser")


@transaction.atomic
def user_create(*, acting_user: User | None, email: str, display_name: str, password: str | None) -> User:
    user = User.objects.create_user(email=email, password=password, display_name=display_name)
    audit_record(
        tenant=None,
        acting_user=acting_user,
        action="account.created",
        summary=f"Account {user.email} created",
        target=user,
        after={"email": user.email, "display_name": user.display_name},
    )
    return user


@transaction.atomic
def user_update(*, user: User, acting_user: User | None, changes: dict[str, Any]) -> User:
    """Change an account's details or status, audited in every tenant it belongs to.

    Deactivating an account, or taking away operator rights, signs its sessions out at once.
    """
    unknown = set(changes) - set(USER_FIELDS)
    if unknown:
        raise ValueError(f"Not editable here: {', '.join(sorted(unknown))}")
    locked = User.objects.select_for_update().get(pk=user.pk)
    before = {k: getattr(locked, k) for k in changes if getattr(locked, k) != changes[k]}
    if not before:
        return locked
    after = {k: changes[k] for k in before}
    for k, v in after.items():
        setattr(locked, k, v)
    # Operators are staff for Django's sake; nobody else is.
    locked.is_staff = locked.is_superuser
    locked.save(update_fields=[*after, "is_staff"])
    ended = 0
    if after.get("is_active") is False or after.get("is_superuser") is False:
        ended = user_sessions_end(user=locked)
    summary = f"Account {locked.email} changed: " + ", ".join(f"{k} {before[k]} → {after[k]}" for k in after)
    if ended:
        summary += f"; {ended} session{'s' if ended != 1 else ''} signed out"
    for tenant in _user_tenants(locked):
        audit_record(
            tenant=tenant,
            acting_user=acting_user,
            action="account.updated",
            summary=summary,
            target=locked,
            before=before,
            after=after,
        )
    return locked


@transaction.atomic
def user_set_password(*, user: User, acting_user: User | None, password: str | None) -> User:
    """An operator sets a new password; the account's other sessions end with it."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    locked.set_password(password)
    locked.save(update_fields=["password"])
    ended = user_sessions_end(user=locked)
    for tenant in _user_tenants(locked):
        audit_record(
            tenant=tenant,
            acting_user=acting_user,
            action="account.password_set",
            summary=f"New password set for {locked.email} by an operator; "
            f"{ended} session{'s' if ended != 1 else ''} signed out",
            target=locked,
        )
    return locked


@transaction.atomic
def expert_session_record(*, tenant: Tenant, acting_user: User, signed_in_at: int | None) -> None:
    """A provider expert's signed-in session reached this tenant (once per session)."""
    when = (
        datetime.fromtimestamp(signed_in_at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        if isinstance(signed_in_at, int)
        else "an earlier sign-in"
    )
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="experts.session_started",
        summary=f"{acting_user.email} (Defender Experts) signed in at {when} and opened {tenant.name}",
        target=tenant,
    )


@transaction.atomic
def expert_refusal_record(*, tenant: Tenant, acting_user: User, attempted: str, reason: str) -> None:
    """An expert's request on this tenant was refused; the log keeps what and why."""
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="experts.action_refused",
        summary=f"Refused: {attempted} by {acting_user.email} (Defender Experts). {reason}",
        target=tenant,
        after={"attempted": attempted, "allowed": False, "reason": reason},
    )


@transaction.atomic
def member_sessions_end(*, tenant: Tenant, acting_user: User, membership: Membership) -> int:
    """An admin signs a member out of every session; returns how many ended."""
    if membership.tenant_id != tenant.pk:
        raise ValidationError("That person isn't a member of this organisation.", code="foreign_member")
    ended = user_sessions_end(user=membership.user)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="tenant.member_signed_out",
        summary=f"{membership.user.email} signed out of {ended} session{'s' if ended != 1 else ''} by an admin",
        target=membership,
        after={"user": membership.user.email, "sessions_ended": ended},
    )
    return ended


@transaction.atomic
def tenant_set_mfa_requirement(*, tenant: Tenant, acting_user: User, required: bool) -> Tenant:
    """Whether members who can change settings must sign in with a second factor."""
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if locked.require_mfa_for_admins == required:
        return locked
    locked.require_mfa_for_admins = required
    locked.save(update_fields=["require_mfa_for_admins"])
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="tenant.mfa_requirement_changed",
        summary="Multi-factor sign-in "
        + ("required" if required else "no longer required")
        + " for Global and Security Administrators",
        target=locked,
        before={"require_mfa_for_admins": not required},
        after={"require_mfa_for_admins": required},
    )
    tenant.require_mfa_for_admins = required
    return locked


# --- A user's own sign-in: second factors and sessions ----------------------------------------


def _own_logs(user: User) -> list[Tenant | None]:
    """Where a change to an account's own sign-in is recorded: every tenant it belongs to, else the operators' log."""
    return list(Tenant.objects.filter(memberships__user=user).order_by("pk")) or [None]


@transaction.atomic
def account_factor_change_record(*, acting_user: User, authenticator: Any, change: str) -> None:
    """Record that ``acting_user`` added, removed, reset or renamed one of their second factors.

    The change itself is allauth's (its MFA views, run in a transaction, see
    ``tenancy/urls.py``); this writes its audit rows in that same transaction.
    """
    kind = {"totp": "authenticator app", "recovery_codes": "recovery codes", "webauthn": "passkey"}.get(
        authenticator.type, authenticator.type
    )
    for tenant in _own_logs(acting_user):
        audit_record(
            tenant=tenant,
            acting_user=acting_user,
            action=f"auth.factor_{change}",
            summary=f"{acting_user.email} {change} their {kind}",
            target=authenticator,
            after={"type": authenticator.type},
        )


@transaction.atomic
def own_other_sessions_end(*, acting_user: User, keep_session_key: str | None) -> int:
    """The user signs their other sessions out (Signed-in sessions); returns how many ended."""
    ended = user_sessions_end(user=acting_user, keep_session_key=keep_session_key)
    for tenant in _own_logs(acting_user):
        audit_record(
            tenant=tenant,
            acting_user=acting_user,
            action="auth.other_sessions_ended",
            summary=f"{acting_user.email} signed out of {ended} other session{'s' if ended != 1 else ''}",
            target=acting_user,
            after={"sessions_ended": ended},
        )
    return ended
