from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from tenancy.selectors import memberships_for_user


def portal(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)

    def memberships() -> list[Any]:
        if membership is None:
            return []
        # The middleware's query counted them: a member of one organisation needs no second query.
        if getattr(membership, "memberships", 2) <= 1:
            return [membership]
        return list(memberships_for_user(membership.user))

    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": membership,
        "can_manage": bool(membership and membership.can_manage),
        "provider_staff": getattr(request, "provider_staff", None),
        # One query, only on pages that render the organisation switcher, for a member of several.
        "user_memberships": SimpleLazyObject(memberships),
    }
