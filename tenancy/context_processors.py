from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from tenancy.selectors import memberships_for_user


def portal(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": membership,
        "can_manage": bool(membership and membership.can_manage),
        "provider_staff": getattr(request, "provider_staff", None),
        # One query, only on pages that render the organisation switcher.
        "user_memberships": SimpleLazyObject(
            lambda: list(memberships_for_user(membership.user)) if membership is not None else []
        ),
    }
