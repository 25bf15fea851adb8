"""The provider's side: the access each tenant has granted, and "attempt an action".

Both use the same selectors and the same evaluator as the tenant's own page,
so what the experts are told and what the customer sees can't disagree.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.views.decorators.http import require_GET, require_http_methods

from audit.selectors import recent_events
from core.errors import InvalidForm
from core.pages import on_error, render_page, require_valid
from exclusions.selectors import exclusion_counts, exclusion_rules, exclusion_state
from permissions.evaluator import effective_access
from permissions.forms import AttemptForm
from permissions.selectors import (
    access_health,
    access_levels_state,
    access_snapshot,
    device_named,
    device_scope,
    directory_user_named,
    provider_tenants_access,
)
from permissions.services import expert_action_attempt
from tenancy.access import ProviderRequest, provider_page, provider_tenant_or_404
from tenancy.models import Tenant

RECENT_ATTEMPTS = 10
ATTEMPT_ACTIONS = ("permissions.expert_action_allowed", "permissions.expert_action_refused")


@provider_page
@require_GET
def access_list(request: ProviderRequest) -> HttpResponse:
    rows = provider_tenants_access(organization=request.provider_staff.organization)
    return render_page(request, "permissions/provider/list.html", {"rows": rows, "nav": "provider_access"})


def _detail(request: ProviderRequest, tenant: Tenant, form: AttemptForm, decision: Any = None) -> HttpResponse:
    snapshot = access_snapshot(tenant=tenant)
    scope = device_scope(tenant=tenant)
    rules = exclusion_rules(tenant=tenant)
    ctx = {
        "tenant": tenant,
        "state": access_levels_state(tenant=tenant, snapshot=snapshot),
        "health": access_health(tenant=tenant, snapshot=snapshot, scope=scope),
        "scope": scope,
        "effective": effective_access(
            tenant=tenant,
            snapshot=snapshot,
            scope=scope,
            exclusions=rules,
            excluded=exclusion_counts(tenant=tenant, rules=rules),
        ),
        # The provider's staff see the exclusion list read-only.
        "exclusions": exclusion_state(tenant=tenant),
        "form": form,
        "attempts": recent_events(tenant=tenant, actions=ATTEMPT_ACTIONS, limit=RECENT_ATTEMPTS),
        "nav": "provider_access",
        "decision": decision,
    }
    # htmx swaps only the attempt panel after an attempt; the page itself loads whole.
    partial = "attempt" if request.method == "POST" else None
    return render_page(request, "permissions/provider/detail.html", ctx, partial=partial)


@provider_page
@require_http_methods(["GET", "POST"])
def access_detail(request: ProviderRequest, tenant_id: str) -> HttpResponse:
    tenant = provider_tenant_or_404(request, tenant_id)
    if request.method == "GET":
        return _detail(request, tenant, AttemptForm())
    form = AttemptForm(request.POST)
    on_error(request, lambda error: _detail(request, tenant, form))
    require_valid(form)
    action = form.cleaned_data["action"]
    if form.on_user:
        user = directory_user_named(tenant=tenant, upn=form.cleaned_data["user"])
        if user is None:
            form.add_error("user", f"There's no user “{form.cleaned_data['user']}” in {tenant.name}'s directory.")
            raise InvalidForm(form=form)
        decision = expert_action_attempt(tenant=tenant, acting_user=request.user, action=action, user=user)
        return _detail(request, tenant, form, decision)
    device = device_named(tenant=tenant, name=form.cleaned_data["device"])
    if device is None:
        form.add_error("device", f"There's no device named “{form.cleaned_data['device']}” in {tenant.name}.")
        raise InvalidForm(form=form)
    decision = expert_action_attempt(tenant=tenant, acting_user=request.user, action=action, device=device)
    return _detail(request, tenant, form, decision)
