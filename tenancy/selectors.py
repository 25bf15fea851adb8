from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from tenancy.models import Membership, ProviderStaff, Tenant, User


def provider_staff_for_user(user: Any) -> ProviderStaff | None:
    return ProviderStaff.objects.select_related("organization", "user").filter(user_id=user.pk).first()


def membership_for_session(user: Any, tenant_id: Any) -> Membership | None:
    """The membership for the tenant chosen in the session, or the user's first."""
    qs = Membership.objects.select_related("tenant", "tenant__provider", "user").filter(user_id=user.pk)
    if tenant_id is not None:
        chosen = qs.filter(tenant_id=tenant_id).first()
        if chosen is not None:
            return chosen
    return qs.order_by("tenant__name", "tenant_id").first()


def membership_in(*, user: User, tenant_id: int) -> Membership | None:
    """The user's membership of one tenant (one query), or ``None``."""
    return Membership.objects.select_related("tenant").filter(user_id=user.pk, tenant_id=tenant_id).first()


def memberships_for_user(user: User) -> QuerySet[Membership]:
    return Membership.objects.select_related("tenant").filter(user=user).order_by("tenant__name")


def tenant_admin_emails(tenant: Tenant) -> list[str]:
    """Addresses of the members who may change settings (welcome email, reminders)."""
    from tenancy.models import MANAGING_ROLES

    return list(
        Membership.objects.filter(tenant=tenant, role__in=MANAGING_ROLES, user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )


def member_session_counts(*, tenant: Tenant) -> list[Membership]:
    """The tenant's members with ``n_sessions``, their signed-in sessions (one query)."""
    return list(
        Membership.objects.filter(tenant=tenant)
        .select_related("user")
        .annotate(n_sessions=Count("user__usersession"))
        .order_by("user__email")
    )
