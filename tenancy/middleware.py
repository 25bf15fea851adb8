"""Resolve the signed-in user's active tenant membership once per request."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tenancy.selectors import membership_for_session, provider_staff_for_user

SESSION_TENANT_KEY = "active_tenant_id"


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        request.tenant = None  # type: ignore[attr-defined]
        request.provider_staff = None  # type: ignore[attr-defined]
        user = request.user
        if user.is_authenticated:
            # One query each; both use select_related so pages can show the
            # tenant and provider names without further queries.
            staff = provider_staff_for_user(user)
            if staff is not None:
                request.provider_staff = staff  # type: ignore[attr-defined]
            else:
                membership = membership_for_session(user, request.session.get(SESSION_TENANT_KEY))
                if membership is not None:
                    request.membership = membership  # type: ignore[attr-defined]
                    request.tenant = membership.tenant  # type: ignore[attr-defined]
        return self.get_response(request)
