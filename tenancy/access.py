"""The one place that scopes requests to the signed-in user's tenant.

Views start with one of the decorators below and fetch objects through
``get_tenant_object_or_404``; nothing tenant-scoped is queried any other way.

* anonymous users are redirected to sign-in;
* a signed-in user with no membership, or provider staff, never reach a
  tenant's pages (provider staff are sent to the provider area);
* an object of another tenant, or a malformed id, is a 404;
* a write by a member whose role may only view is a 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from tenancy.models import Membership, ProviderStaff, Tenant

P = ParamSpec("P")
M = TypeVar("M", bound=models.Model)
View = Callable[Concatenate[HttpRequest, P], HttpResponse]

READ_ONLY_MESSAGE = "Only a Global Administrator or a Security Administrator can change Defender Experts settings."


class TenantRequest(HttpRequest):
    """An ``HttpRequest`` that ``tenant_view`` has resolved to a membership."""

    tenant: Tenant
    membership: Membership
    provider_staff: ProviderStaff | None


def tenant_view(view: View[P]) -> View[P]:
    """Require a signed-in tenant member; sets ``request.tenant`` and ``request.membership``."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership: Membership | None = getattr(request, "membership", None)
        if membership is None:
            if getattr(request, "provider_staff", None) is not None:
                return redirect("onboarding_provider:console")
            raise PermissionDenied("Your account is not a member of any organisation in this portal.")
        return view(request, *args, **kwargs)

    return wrapper


def tenant_admin_view(view: View[P]) -> View[P]:
    """Like ``tenant_view``, and the member must be allowed to change settings."""

    @functools.wraps(view)
    def inner(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        require_manage(request)
        return view(request, *args, **kwargs)

    return tenant_view(inner)


def require_manage(request: HttpRequest) -> None:
    """403 unless the member's role may change Defender Experts settings."""
    membership: Membership | None = getattr(request, "membership", None)
    if membership is None or not membership.can_manage:
        raise PermissionDenied(READ_ONLY_MESSAGE)


def provider_view(view: View[P]) -> View[P]:
    """Require a signed-in member of the provider's staff; sets ``request.provider_staff``."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if getattr(request, "provider_staff", None) is None:
            raise PermissionDenied("This area is for Defender Experts staff.")
        return view(request, *args, **kwargs)

    return wrapper


def get_tenant_object_or_404(request: HttpRequest, queryset: type[M] | models.QuerySet[M], **lookup: Any) -> M:
    """Fetch one object of the request's tenant; anything else is a 404.

    A malformed id (for example letters where a number is expected) is a 404
    too, never a 500.
    """
    tenant: Tenant | None = getattr(request, "tenant", None)
    if tenant is None:
        raise Http404
    qs = queryset._default_manager.all() if isinstance(queryset, type) else queryset
    try:
        return qs.get(tenant=tenant, **lookup)
    except (ObjectDoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404 from None


def provider_tenant_or_404(request: HttpRequest, tenant_id: Any) -> Tenant:
    """A tenant served by the signed-in staff member's provider organisation."""
    staff: ProviderStaff | None = getattr(request, "provider_staff", None)
    if staff is None:
        raise Http404
    try:
        return Tenant.objects.get(pk=tenant_id, provider_id=staff.organization_id)
    except (Tenant.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
