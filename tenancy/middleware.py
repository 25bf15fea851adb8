"""Resolve the signed-in user's active tenant membership once per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.http import HttpRequest, HttpResponse

from tenancy.access import PortalRequest
from tenancy.selectors import request_identity

SESSION_TENANT_KEY = "active_tenant_id"


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, http_request: HttpRequest) -> HttpResponse:
        # This is where a plain request becomes a PortalRequest.
        request = cast(PortalRequest, http_request)
        request.membership = None
        request.tenant = None
        request.provider_staff = None
        user = request.user
        if user.is_authenticated:
            # One query for a tenant's member (two for provider staff), with select_related so that
            # pages can show the tenant and provider names without further queries.
            identity = request_identity(user, request.session.get(SESSION_TENANT_KEY))
            request.provider_staff = identity.provider_staff
            if identity.membership is not None:
                request.membership = identity.membership
                request.tenant = identity.membership.tenant
        return self.get_response(request)
