"""The one place that scopes requests to the signed-in user's tenant (or to
the provider's staff). With ``core`` it forms the web core every app uses.

A tenant page is a function taking a ``TenantRequest``, wrapped in
``tenant_page``; a provider page takes a ``ProviderRequest`` and is wrapped in
``provider_page``. They fetch objects through ``get_tenant_object_or_404`` /
``provider_tenant_or_404``; nothing tenant-scoped is queried any other way.

* anonymous users are redirected to sign-in (302);
* provider staff never reach a tenant's pages: they are sent to their console
  (302); a signed-in user with no membership gets a 403;
* ``tenant_page(manage=True)``: a member whose role may only view gets a 403
  for every method; ``manage="writes"`` lets them GET and refuses the rest;
* ``provider_page(sdm=True)``: only a service delivery manager (else 403);
* an object of another tenant, or a malformed id, is a 404.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, cast, overload

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import redirect
from django_htmx.middleware import HtmxDetails

from core.errors import NotAllowed
from tenancy.bounds import parse_id
from tenancy.models import Membership, ProviderStaff, Tenant, User
from tenancy.services import expert_refusal_record, expert_session_record

P = ParamSpec("P")
Q = ParamSpec("Q")
M = TypeVar("M", bound=models.Model)
R = TypeVar("R", bound=HttpRequest)
# A view may answer with any response (a streamed CSV export too).
View = Callable[Concatenate[HttpRequest, P], HttpResponseBase]

READ_ONLY_MESSAGE = "Only a Global Administrator or a Security Administrator can change Defender Experts settings."
NOT_A_MEMBER_MESSAGE = "Your account is not a member of any organisation in this portal."
PROVIDER_ONLY_MESSAGE = "This area is for Defender Experts staff."
SDM_ONLY_MESSAGE = "Only a service delivery manager can do this."
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PortalRequest(HttpRequest):
    """Every request, as the middleware leaves it (see TenantMiddleware, django-htmx)."""

    htmx: HtmxDetails
    tenant: Tenant | None
    membership: Membership | None
    provider_staff: ProviderStaff | None


class TenantRequest(PortalRequest):
    """A request ``tenant_page`` let through: a signed-in member of ``tenant``."""

    user: User
    tenant: Tenant
    membership: Membership
    provider_staff: None


class ProviderRequest(PortalRequest):
    """A request ``provider_page`` let through: a signed-in member of the provider's staff."""

    user: User
    tenant: None
    membership: None
    provider_staff: ProviderStaff


TenantView = Callable[Concatenate[TenantRequest, P], HttpResponseBase]
ProviderView = Callable[Concatenate[ProviderRequest, P], HttpResponseBase]


class TenantPageDecorator(Protocol):
    def __call__(self, view: TenantView[P], /) -> View[P]: ...


class ProviderPageDecorator(Protocol):
    def __call__(self, view: ProviderView[P], /) -> View[P]: ...


@overload
def tenant_page(view: TenantView[P], /) -> View[P]: ...
@overload
def tenant_page(*, manage: bool | Literal["writes"] = False) -> TenantPageDecorator: ...
def tenant_page(
    view: TenantView[P] | None = None,
    /,
    *,
    manage: bool | Literal["writes"] = False,
) -> View[P] | TenantPageDecorator:
    """Require a signed-in tenant member (and, with ``manage``, a role that may change settings).

    Use bare (``@tenant_page``) or with options (``@tenant_page(manage=True)``).
    """

    def decorate(view: TenantView[Q]) -> View[Q]:
        def wrapper(request: HttpRequest, /, *args: Q.args, **kwargs: Q.kwargs) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership: Membership | None = getattr(request, "membership", None)
            if membership is None:
                if getattr(request, "provider_staff", None) is not None:
                    return redirect("onboarding_provider:console")
                raise NotAllowed(NOT_A_MEMBER_MESSAGE)
            if (manage is True or (manage == "writes" and request.method not in SAFE_METHODS)) and (
                not membership.can_manage
            ):
                raise NotAllowed(READ_ONLY_MESSAGE)
            return view(cast(TenantRequest, request), *args, **kwargs)

        functools.update_wrapper(wrapper, view)
        return wrapper

    return decorate(view) if view is not None else decorate


@overload
def provider_page(view: ProviderView[P], /) -> View[P]: ...
@overload
def provider_page(*, sdm: bool = False) -> ProviderPageDecorator: ...
def provider_page(
    view: ProviderView[P] | None = None,
    /,
    *,
    sdm: bool = False,
) -> View[P] | ProviderPageDecorator:
    """Require a signed-in member of the provider's staff (with ``sdm``, a service delivery manager)."""

    def decorate(view: ProviderView[Q]) -> View[Q]:
        def wrapper(request: HttpRequest, /, *args: Q.args, **kwargs: Q.kwargs) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            staff: ProviderStaff | None = getattr(request, "provider_staff", None)
            if staff is None:
                raise NotAllowed(PROVIDER_ONLY_MESSAGE)
            if sdm and not staff.is_service_delivery_manager:
                record_refused_expert_action(request, SDM_ONLY_MESSAGE, kwargs)
                raise NotAllowed(SDM_ONLY_MESSAGE)
            return view(cast(ProviderRequest, request), *args, **kwargs)

        functools.update_wrapper(wrapper, view)
        return wrapper

    return decorate(view) if view is not None else decorate


def get_tenant_object_or_404(request: HttpRequest, queryset: type[M] | models.QuerySet[M], **lookup: Any) -> M:
    """Fetch one object of the request's tenant; anything else is a 404.

    A malformed id (for example letters where a number is expected) is a 404
    too, never a 500.
    """
    tenant: Tenant | None = getattr(request, "tenant", None)
    if tenant is None:
        raise Http404
    qs = queryset._default_manager.all() if isinstance(queryset, type) else queryset
    for key in ("pk", "id"):
        if key in lookup and parse_id(lookup[key]) is None:
            raise Http404
    try:
        return qs.get(tenant=tenant, **lookup)
    except (ObjectDoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404 from None


def provider_tenant_or_404(request: HttpRequest, tenant_id: Any) -> Tenant:
    """A tenant served by the signed-in staff member's provider organisation."""
    staff: ProviderStaff | None = getattr(request, "provider_staff", None)
    if staff is None:
        raise Http404
    if parse_id(tenant_id) is None:
        raise Http404
    try:
        tenant = Tenant.objects.get(pk=tenant_id, provider_id=staff.organization_id)
    except (Tenant.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    _record_expert_session(request, staff, tenant)
    return tenant


SESSION_EXPERT_TENANTS = "expert_tenants"


def _record_expert_session(request: HttpRequest, staff: ProviderStaff, tenant: Tenant) -> None:
    """The first time in a signed-in session that an expert opens a tenant, the
    tenant's log says so ("Experts' activity"): when, from where, with what."""
    seen = request.session.get(SESSION_EXPERT_TENANTS)
    seen = list(seen) if isinstance(seen, list) else []
    if tenant.pk in seen:
        return
    expert_session_record(tenant=tenant, acting_user=staff.user, signed_in_at=request.session.get("signed_in_at"))
    request.session[SESSION_EXPERT_TENANTS] = [*seen, tenant.pk]


def record_refused_expert_action(request: HttpRequest, reason: str, kwargs: dict[str, Any] | None = None) -> None:
    """An expert was refused a change on one of their provider's tenants: the
    tenant's log keeps what they attempted and why ("Experts' activity")."""
    staff: ProviderStaff | None = getattr(request, "provider_staff", None)
    match = request.resolver_match
    if staff is None or match is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    tenant_id = parse_id((kwargs if kwargs is not None else match.kwargs).get("tenant_id"))
    tenant = Tenant.objects.filter(pk=tenant_id, provider_id=staff.organization_id).first() if tenant_id else None
    if tenant is not None:
        expert_refusal_record(tenant=tenant, acting_user=staff.user, attempted=match.view_name, reason=reason)
