"""The provider's side: the access each tenant has granted, and "attempt an action".

Both use the same selectors and the same evaluator as the tenant's own page,
so what the experts are told and what the customer sees can't disagree.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from audit.models import AuditEvent
from environment.models import Device
from permissions.evaluator import effective_access
from permissions.forms import AttemptForm
from permissions.selectors import (
    access_health,
    access_levels_state,
    access_snapshot,
    device_scope,
    provider_tenants_access,
)
from permissions.services import expert_action_attempt
from tenancy.access import provider_tenant_or_404, provider_view
from tenancy.request_ip import client_ip

RECENT_ATTEMPTS = 10


@provider_view
@require_GET
def access_list(request: HttpRequest) -> HttpResponse:
    rows = provider_tenants_access(organization=request.provider_staff.organization)  # type: ignore[attr-defined]
    return render(request, "permissions/provider/list.html", {"rows": rows, "nav": "provider_access"})


def _detail_context(request: HttpRequest, tenant: Any, form: AttemptForm) -> dict[str, Any]:
    snapshot = access_snapshot(tenant=tenant)
    scope = device_scope(tenant=tenant)
    attempts = list(
        AuditEvent.objects.filter(
            tenant=tenant,
            action__in=["permissions.expert_action_allowed", "permissions.expert_action_refused"],
        ).order_by("-created_at", "-id")[:RECENT_ATTEMPTS]
    )
    return {
        "tenant": tenant,
        "state": access_levels_state(tenant=tenant, snapshot=snapshot),
        "health": access_health(tenant=tenant, snapshot=snapshot),
        "scope": scope,
        "effective": effective_access(tenant=tenant, snapshot=snapshot, scope=scope),
        "form": form,
        "attempts": attempts,
        "nav": "provider_access",
    }


@provider_view
@require_http_methods(["GET", "POST"])
def access_detail(request: HttpRequest, tenant_id: str) -> HttpResponse:
    tenant = provider_tenant_or_404(request, tenant_id)
    decision = None
    status = 200
    if request.method == "POST":
        form = AttemptForm(request.POST)
        if form.is_valid():
            device = (
                Device.objects.select_related("device_group")
                .filter(tenant=tenant, name=form.cleaned_data["device"])
                .first()
            )
            if device is None:
                form.add_error("device", f"There's no device named “{form.cleaned_data['device']}” in {tenant.name}.")
                status = 400
            else:
                decision = expert_action_attempt(
                    tenant=tenant,
                    acting_user=request.user,  # type: ignore[arg-type]
                    action=form.cleaned_data["action"],
                    device=device,
                    ip_address=client_ip(request),
                )
        else:
            status = 400
    else:
        form = AttemptForm()
    ctx = _detail_context(request, tenant, form)
    ctx["decision"] = decision
    template = "permissions/provider/detail.html"
    if request.htmx and request.method == "POST":  # type: ignore[attr-defined]
        return render(request, f"{template}#attempt", ctx)
    return render(request, template, ctx, status=status)
