"""Settings > Defender Experts > Service status, its lists and export; the provider's readiness pages."""

from __future__ import annotations

import csv
import functools
import hashlib
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.loader import get_template
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import ApplicationError, Invalid
from core.pages import is_htmx, on_error, render_page
from environment.selectors import DevicePage
from exclusions.selectors import exclusion_counts
from permissions.selectors import access_health
from readiness import presenters
from readiness.catalogue import ENTRIES, PRODUCTS
from readiness.models import ActionState, Priority, ReadinessState, RunOutcome
from readiness.selectors import (
    DEVICE_STATE_ENV_QUERY,
    DEVICE_STATE_FIGURE,
    DEVICE_STATES,
    EMBEDDED_PAGE_SIZE,
    IDENTITY_STATE_FIGURE,
    IDENTITY_STATES,
    PAGE_SIZE,
    SORT_KEYS,
    ActionRow,
    action_rows,
    device_page,
    domain_controller_page,
    filter_and_sort,
    history,
    history_chart,
    identity_page,
    open_regressions,
    readiness_state,
    runs_for_provider,
)
from readiness.services import (
    monitoring_ends_at,
    readiness_confirm_active,
    readiness_request_refresh,
    readiness_start_monitoring,
    regression_links,
)
from tenancy.access import ProviderRequest, TenantRequest, provider_page, provider_tenant_or_404, tenant_page
from tenancy.models import ServicePhase, Tenant

PAGE = "readiness/service_status.html"

# The parts of Service status that only change with a refresh (the history chart and table, the
# action rows) are rendered once per snapshot generation and kept in Django's cache: Redis in
# production, the database cache in the embedded default. Their keys (see _page_context) name
# everything those parts show, so a refresh, a change seen in the environment, another filter or a
# new version of the template gives a new key; entries of past generations simply expire.
FRAGMENT_TIMEOUT = 2 * 24 * 3600


@functools.cache
def _template_version() -> str:
    """The page template's own fingerprint, so a deploy never serves fragments of the old template."""
    source = getattr(get_template(PAGE), "template", None)
    return hashlib.sha256(str(getattr(source, "source", PAGE)).encode()).hexdigest()[:12]


def _snapshot_key(tenant: Tenant, state: ReadinessState) -> str:
    refreshed = state.last_refreshed_at.isoformat() if state.last_refreshed_at else "never"
    return f"{_template_version()}:{tenant.pk}:{state.completed_generation}:{refreshed}"


def _table_params(request: TenantRequest) -> dict[str, str]:
    """The table's filter and sort, validated: anything unknown falls back to the default."""
    status = request.GET.get("status", "")
    priority = request.GET.get("priority", "")
    product = request.GET.get("product", "")
    sort = request.GET.get("sort", "status")
    direction = request.GET.get("dir", "asc")
    return {
        "status": status if status in ActionState.values else "",
        "priority": priority if priority in Priority.values else "",
        "product": product if product in dict(PRODUCTS) else "",
        "sort": sort if sort in SORT_KEYS else "status",
        "dir": direction if direction in ("asc", "desc") else "asc",
    }


def _sort_links(params: dict[str, str]) -> dict[str, dict[str, str]]:
    links = {}
    for key in SORT_KEYS:
        active = params["sort"] == key
        direction = "desc" if active and params["dir"] == "asc" else "asc"
        query = {k: v for k, v in {**params, "sort": key, "dir": direction}.items() if v}
        links[key] = {
            "query": urlencode(query),
            "aria": ("ascending" if params["dir"] == "asc" else "descending") if active else "none",
        }
    return links


def _page_context(request: TenantRequest) -> dict[str, Any]:
    """Everything the page shows, in a fixed number of queries whatever the environment size.

    state (1) + action statuses (1) + change detection (2) + history (1) +
    open regressions (1) + the access-health banner (Permissions' own fixed count) + the assets excluded
    from remediation (3).
    """
    tenant = request.tenant
    state = readiness_state(tenant=tenant)
    params = _table_params(request)
    all_rows = action_rows(tenant=tenant, state=state)

    def shown_rows() -> list[ActionRow]:
        rows = filter_and_sort(
            all_rows,
            status=params["status"],
            priority=params["priority"],
            product=params["product"],
            sort=params["sort"],
            direction=params["dir"],
        )
        for row in rows:
            row.fix_url = presenters.fix_url(row.entry)
            row.badge = presenters.status_badge(row.shown_status)
        return rows

    # Changes since the last refresh: the environment's own stamp, and what each action reads (which
    # includes service provider access, granted in Permissions rather than in the environment).
    changes = [r.changed_at for r in all_rows if r.changed_at is not None]
    if state.environment_seen_at is not None and tenant.environment_changed_at > state.environment_seen_at:
        changes.append(tenant.environment_changed_at)
    pending_change = bool(changes)
    now = timezone.now()
    # A change is picked up at change time + this tenant's delay; the sweep only writes that into
    # next_refresh_at on its next pass, so the page works it out itself rather than show tomorrow's date.
    next_check_at = state.next_refresh_at
    if pending_change:
        next_check_at = min(next_check_at, max(changes) + state.delay)
    snapshot_key = _snapshot_key(tenant, state)
    seen = ",".join(f"{r.key}@{r.changed_at.isoformat()}" for r in all_rows if r.changed_at is not None)
    # The cached parts show what is pending and by when it'll be confirmed ("running now" once that
    # time has passed): all of it is in their keys, so no fragment shows a verdict a change has outdated.
    pending = f"{seen}:{next_check_at.isoformat()}:{next_check_at <= now}"
    return {
        "nav": "service_status",
        "tenant": tenant,
        "state": state,
        # The parts below that only the cached fragments show are worked out only when they're rendered.
        "rows": SimpleLazyObject(shown_rows),
        "params": params,
        "sort_links": SimpleLazyObject(lambda: _sort_links(params)),
        "statuses": ActionState.choices,
        "priorities": Priority.choices,
        "products": PRODUCTS,
        "donut": SimpleLazyObject(lambda: presenters.donut(all_rows)),
        "catalogue_size": len(ENTRIES),
        # The required actions not completed, listed under the chart so the admin can go straight to them.
        "complete_now_rows": [r for r in all_rows if r.needs_completing_now],
        "banner": presenters.phase_banner(tenant, state),
        "access_health": access_health(tenant=tenant),
        # Live, outside the cached fragments: an exclusion changes what the experts may do at once.
        "excluded_assets": exclusion_counts(tenant=tenant),
        # Read and drawn only when the cache doesn't have this generation's history.
        "chart": SimpleLazyObject(lambda: history_chart(history(tenant=tenant))),
        "history_key": snapshot_key,
        "summary_key": f"{snapshot_key}:{pending}",
        "actions_key": f"{snapshot_key}:{pending}:{sorted(params.items())}",
        "fragment_timeout": FRAGMENT_TIMEOUT,
        "regressions": [
            {"regression": r, "link": regression_links(r)["link"]} for r in open_regressions(tenant=tenant)
        ],
        "pending_change": pending_change,
        "changed_at": max(changes) if changes else None,
        "note": presenters.NOTE_24H,
        "assets": presenters.asset_cards(state),
        "refresh_requested": bool(
            state.refresh_requested_at
            and (state.last_refreshed_at is None or state.refresh_requested_at >= state.last_refreshed_at)
        ),
        "next_check_at": next_check_at,
        "next_refresh_overdue": next_check_at <= now,
        "filtered": bool(params["status"] or params["priority"] or params["product"]),
        "export_query": urlencode({k: v for k, v in params.items() if v}),
    }


@require_GET
@tenant_page
def service_status(request: TenantRequest) -> HttpResponse:
    # The filters and sort links swap the actions section; anything else gets the whole page.
    actions_only = is_htmx(request) and request.htmx.target == "actions-section"
    return render_page(request, PAGE, _page_context(request), partial="actions" if actions_only else None)


@require_POST
@tenant_page(manage=True)
def request_refresh(request: TenantRequest) -> HttpResponse:
    try:
        state = readiness_request_refresh(tenant=request.tenant, acting_user=request.user)
    except Invalid as exc:
        messages.warning(request, exc.message)
    else:
        if state.next_refresh_at <= timezone.now():
            # Already due (the first assessment, or a change whose delay has passed): the next sweep runs it.
            text = "Refresh requested. A refresh is already due; expect the latest status within a few minutes."
        else:
            text = (
                f"Refresh requested. Expect the latest status by {timezone.localtime(state.next_refresh_at):%H:%M} UTC."
            )
        messages.success(request, text)
    return redirect("readiness:service_status")


def _csv_safe(value: Any) -> str:
    """Neutralise spreadsheet formulas in exported text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@require_GET
@tenant_page
def export_csv(request: TenantRequest) -> HttpResponse:
    context = _page_context(request)
    state = context["state"]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(state.last_refreshed_at or timezone.now()).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="readiness-assessment-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "Section",
            "Title",
            "Product",
            "Status",
            "Priority",
            "Last status change",
            "Last checked",
            "Done",
            "Total",
            "Still to protect",
            "Details",
        ]
    )

    def when(value: Any) -> str:
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M UTC") if value else ""

    for row in context["rows"]:
        writer.writerow(
            [
                _csv_safe(v)
                for v in (
                    "Action",
                    row.entry.title,
                    row.entry.product,
                    row.status_label,
                    row.entry.priority_label,
                    when(row.last_status_change),
                    when(row.last_checked_at),
                    row.done,
                    row.total,
                    "",
                    row.detail,
                )
            ]
        )
    # Before the first assessment there are no asset figures to export (not zeros). The same
    # breakdowns as the page: each asset line, then the reasons that add up to its "still to protect".
    for card in presenters.asset_cards(state) if state.has_refreshed else ():
        writer.writerow(
            [
                "Protected assets",
                f"Protected {card.noun}",
                "",
                "",
                "",
                "",
                when(state.last_refreshed_at),
                card.protected,
                card.target,
                card.to_protect,
                "",
            ]
        )
        for reason in card.reasons:
            writer.writerow(
                [
                    "Protected assets",
                    f"{card.noun.capitalize()} still to protect: {reason.label}",
                    "",
                    "",
                    "",
                    "",
                    when(state.last_refreshed_at),
                    "",
                    "",
                    reason.count,
                    "",
                ]
            )
    return response


def _list_context(request: TenantRequest, kind: str, state_key: str) -> dict[str, Any]:
    tenant = request.tenant
    readiness = readiness_state(tenant=tenant)
    page_number = request.GET.get("page", 1)
    embedded = is_htmx(request)
    per_page = EMBEDDED_PAGE_SIZE if embedded else PAGE_SIZE
    env_query = ""
    page: DevicePage | Page[Any]
    if kind == "devices":
        if state_key not in DEVICE_STATES:
            raise Http404
        title, page = device_page(
            tenant=tenant,
            state=state_key,
            page=page_number,
            per_page=per_page,
            after=request.GET.get("after", ""),
            before=request.GET.get("before", ""),
        )
        figure = DEVICE_STATE_FIGURE.get(state_key)
        env_query = DEVICE_STATE_ENV_QUERY.get(state_key, "")
    elif kind == "domain_controllers":
        if state_key not in ("without_sensor", "with_sensor"):
            raise Http404
        title, page = domain_controller_page(tenant=tenant, state=state_key, page=page_number, per_page=per_page)
        figure = None
    else:
        if state_key not in IDENTITY_STATES:
            raise Http404
        title, page = identity_page(tenant=tenant, state=state_key, page=page_number, per_page=per_page)
        figure = IDENTITY_STATE_FIGURE.get(state_key)
    assessed = getattr(readiness, figure) if figure and readiness.has_refreshed else None
    if isinstance(page, DevicePage):  # device lists page by name (keyset)
        previous_query, next_query = urlencode(page.previous_query()), urlencode(page.next_query())
    else:
        previous_query = urlencode({"page": page.previous_page_number()}) if page.has_previous() else ""
        next_query = urlencode({"page": page.next_page_number()}) if page.has_next() else ""
    return {
        "nav": "service_status",
        "kind": kind,
        "state_key": state_key,
        "title": title,
        "page_obj": page,
        "count": page.paginator.count,
        "previous_query": previous_query,
        "next_query": next_query,
        "assessed": assessed,
        "readiness": readiness,
        "env_query": env_query,
        "embedded": embedded,
    }


def _render_list(request: TenantRequest, context: dict[str, Any]) -> HttpResponse:
    # Embedded in an action's row (htmx) only the list itself is sent.
    return render_page(request, "readiness/asset_list.html", context, partial="list")


@require_GET
@tenant_page
def device_list(request: TenantRequest, state: str) -> HttpResponse:
    return _render_list(request, _list_context(request, "devices", state))


@require_GET
@tenant_page
def domain_controller_list(request: TenantRequest, state: str) -> HttpResponse:
    return _render_list(request, _list_context(request, "domain_controllers", state))


@require_GET
@tenant_page
def identity_list(request: TenantRequest, state: str) -> HttpResponse:
    return _render_list(request, _list_context(request, "identities", state))


# --- Provider ----------------------------------------------------------------------------------


@require_GET
@provider_page
def runs(request: ProviderRequest) -> HttpResponse:
    staff = request.provider_staff
    outcome = request.GET.get("outcome", "")
    outcome = outcome if outcome in RunOutcome.values else ""
    tenant_id: int | None = None
    if request.GET.get("tenant"):
        tenant_id = provider_tenant_or_404(request, request.GET["tenant"]).pk
    qs = runs_for_provider(organization_id=staff.organization_id, tenant_id=tenant_id, outcome=outcome)
    page = Paginator(qs, 50).get_page(request.GET.get("page", 1))
    query = urlencode({k: v for k, v in {"outcome": outcome, "tenant": tenant_id or ""}.items() if v})
    tenants = list(Tenant.objects.filter(provider_id=staff.organization_id).order_by("name").values_list("id", "name"))
    return render_page(
        request,
        "readiness/provider_runs.html",
        {
            "nav": "readiness_runs",
            "page_obj": page,
            "outcome": outcome,
            "outcomes": RunOutcome.choices,
            "tenant_id": tenant_id,
            "tenants": tenants,
            "query": query,
        },
    )


@require_GET
@provider_page
def provider_tenant(request: ProviderRequest, tenant_id: int) -> HttpResponse:
    tenant = provider_tenant_or_404(request, tenant_id)
    state = readiness_state(tenant=tenant)
    rows = filter_and_sort(action_rows(tenant=tenant, state=state))
    for row in rows:
        row.badge = presenters.status_badge(row.shown_status)
    recent = list(runs_for_provider(organization_id=tenant.provider_id, tenant_id=tenant.pk)[:10])
    return render_page(
        request,
        "readiness/provider_tenant.html",
        {
            "nav": "readiness_runs",
            "tenant": tenant,
            "state": state,
            "rows": rows,
            "runs": recent,
            "regressions": open_regressions(tenant=tenant),
            # What blocks readiness: required actions not completed (Complete now or In progress), not just
            # those with the Complete now status.
            "required_left": sum(1 for r in rows if r.entry.required and r.status != ActionState.COMPLETED),
            "required_total": sum(1 for r in rows if r.entry.required),
            "monitoring_ends_at": monitoring_ends_at(tenant),
            "now": timezone.now(),
            "is_sdm": request.provider_staff.is_service_delivery_manager,
            "assets": presenters.asset_cards(state),
        },
    )


@require_http_methods(["GET", "POST"])
@provider_page(sdm=True)
def start_monitoring(request: ProviderRequest, tenant_id: int) -> HttpResponse:
    """GET: what starting the monitoring phase means, with the form (a flyout on the tenant's page). POST: start it."""
    tenant = provider_tenant_or_404(request, tenant_id)
    if request.method == "GET":
        if tenant.service_phase != ServicePhase.PREPARING:
            messages.info(request, f"{tenant.name} is in the {tenant.get_service_phase_display()} phase.")
            return redirect("readiness_provider:tenant", tenant_id=tenant.pk)
        return _start_monitoring_page(request, tenant)
    reason = request.POST.get("reason", "")[:500]
    # Moved on since the page was read: 409, the page as it is now with the reason typed kept.
    on_error(request, lambda error: _start_monitoring_page(request, tenant, reason=reason, conflict=error))
    changed_at = tenant.service_phase_changed_at
    try:
        readiness_start_monitoring(
            tenant=tenant,
            acting_user=request.user,
            reason=reason,
            expected_phase=request.POST.get("phase") or None,
        )
    except Invalid as exc:
        messages.error(request, exc.message)
    else:
        if tenant.service_phase_changed_at == changed_at:
            messages.info(request, f"Nothing changed: the monitoring phase of {tenant.name} had already started.")
        else:
            messages.success(request, f"The monitoring phase of {tenant.name} has started.")
    return redirect("readiness_provider:tenant", tenant_id=tenant.pk)


def _start_monitoring_page(
    request: ProviderRequest, tenant: Tenant, *, reason: str = "", conflict: ApplicationError | None = None
) -> HttpResponse:
    return render_page(
        request,
        "readiness/start_monitoring.html",
        {
            "nav": "readiness_runs",
            "tenant": tenant,
            "state": readiness_state(tenant=tenant),
            "monitoring_days": settings.READINESS_MONITORING_DAYS,
            "reason": reason,
            "conflict": conflict,
        },
    )


@require_POST
@provider_page(sdm=True)
def confirm_active(request: ProviderRequest, tenant_id: int) -> HttpResponse:
    tenant = provider_tenant_or_404(request, tenant_id)
    changed_at = tenant.service_phase_changed_at
    try:
        readiness_confirm_active(
            tenant=tenant,
            acting_user=request.user,
            expected_phase=request.POST.get("phase") or None,
        )
    except Invalid as exc:
        messages.error(request, exc.message)
    else:
        if tenant.service_phase_changed_at == changed_at:
            messages.info(
                request, f"Nothing changed: the Defender Experts service of {tenant.name} was already Active."
            )
        else:
            messages.success(request, f"The Defender Experts service of {tenant.name} is now Active.")
    return redirect("readiness_provider:tenant", tenant_id=tenant.pk)
