from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When

from tenancy.models import Membership, ProviderStaff, Tenant, User


def provider_staff_for_user(user: Any) -> ProviderStaff | None:
    return ProviderStaff.objects.select_related("organization", "user").filter(user_id=user.pk).first()


@dataclass(frozen=True)
class RequestIdentity:
    """Who the signed-in user is on this request (TenantMiddleware)."""

    provider_staff: ProviderStaff | None
    membership: Membership | None


def request_identity(user: Any, tenant_id: Any) -> RequestIdentity:
    """The user's provider-staff record, else their membership of the tenant chosen in the session (or
    their first): one query for a tenant's member, two for provider staff (who have no membership).

    Every request asks this, so the membership query also joins the provider-staff check and counts the
    user's memberships (``memberships``, for the organisation switcher) instead of asking each apart.
    """
    memberships = (
        Membership.objects.filter(user_id=OuterRef("user_id"))
        .order_by()
        .values("user_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    chosen = (
        int(tenant_id)
        if isinstance(tenant_id, int) or (isinstance(tenant_id, str) and tenant_id.isdigit() and len(tenant_id) < 19)
        else 0
    )
    membership = (
        Membership.objects.select_related("tenant", "tenant__provider", "user", "user__provider_staff__organization")
        .filter(user_id=user.pk)
        .annotate(
            memberships=Subquery(memberships, output_field=IntegerField()),
            # The tenant chosen in the session first, then the user's first by name.
            not_chosen=Case(When(tenant_id=chosen, then=Value(0)), default=Value(1), output_field=IntegerField()),
        )
        .order_by("not_chosen", "tenant__name", "tenant_id")
        .first()
    )
    if membership is None:
        return RequestIdentity(provider_staff=provider_staff_for_user(user), membership=None)
    try:
        staff = membership.user.provider_staff
    except ObjectDoesNotExist:
        staff = None
    if staff is not None:
        return RequestIdentity(provider_staff=staff, membership=None)
    return RequestIdentity(provider_staff=None, membership=membership)


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
