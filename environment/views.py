"""The Environment area: the emulated Microsoft side of a tenant.

Every member can look; only Global Administrators and Security
Administrators change things (``tenant_page(manage=...)``: 403 for the
others). Objects are fetched through ``get_tenant_object_or_404``, so another
tenant's id or a malformed id is a 404. Writes go through
``environment.services``; what a service refuses with (``Invalid``: 400,
``Conflict``: 409) re-renders the page with the message and the admin's
values (``on_error``), never a 500.

Every form works as a plain POST (redirect-after-post with a message) and,
when htmx is present, swaps the page's named partial in place.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError, Invalid, InvalidForm
from core.keyset import keyset_page
from core.pages import is_htmx, on_error, render_page, require_valid
from environment import selectors, services
from environment.forms import (
    DEVICE_ACTIONS,
    HIGH_VALUE_ACTIONS,
    DeviceActionForm,
    DirectoryGroupForm,
    DirectoryUserForm,
    LicenceSeatsForm,
    SecuritySettingForm,
)
from environment.models import (
    AntivirusMode,
    Device,
    DeviceGroup,
    DirectoryUser,
    DomainController,
    LicenceProduct,
    OnboardingState,
)
from environment.security_settings import SETTINGS_BY_KEY
from tenancy.access import TenantRequest, get_tenant_object_or_404, tenant_page
from tenancy.bounds import parse_datetime, parse_id

F = TypeVar("F", bound=forms.BaseForm)
DEVICES_PER_PAGE = 50
USERS_PER_PAGE = 50
GROUPS_PER_PAGE = 25
# The directory list's state, carried through row actions so the admin lands back where they were.
KEEP_PARAMS = ("q", "status", "after", "before", "page", "gafter", "gbefore", "gpage")


def _render(request: TenantRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    """The whole page, or only its ``panel`` partial for an htmx request."""
    context.setdefault("nav", "environment")
    return render_page(request, template, context, partial="panel", status=status)


def _with_error(form: F, error: ApplicationError) -> F:
    """``form`` showing what a service refused (a form's own errors are on it already)."""
    if not isinstance(error, InvalidForm):
        fields = error.fields if isinstance(error, Invalid) else {}
        for field, messages_ in fields.items():
            form.add_error(field if field in form.fields else None, messages_)
        if not fields:
            form.add_error(None, error.message)
    return form


def _form_errors(form: forms.BaseForm) -> str:
    return " ".join(str(m) for msgs in form.errors.values() for m in msgs)


def _with_query(url: str, params: dict[str, Any]) -> str:
    params = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{url}?{urlencode(params)}" if params else url


# --- Overview ---------------------------------------------------------------------------------


@tenant_page
def overview(request: TenantRequest) -> HttpResponse:
    tenant = request.tenant
    # Five queries, whatever the size of the environment: device counts (one
    # GROUP BY), identity counts, domain controllers with identity counts,
    # licences, directory group counts, plus stored security settings.
    devices = selectors.device_counts(tenant=tenant)
    identities = selectors.identity_counts(tenant=tenant)
    dcs = list(selectors.domain_controllers_with_identities(tenant=tenant))
    settings_state = selectors.security_settings(tenant=tenant)
    usage = selectors.licence_usage(tenant=tenant, devices=devices, identities=identities)
    seats = {lic.product: lic.seats for lic in usage}
    context = {
        "env_tab": "overview",
        "devices": devices,
        "identities": identities,
        "domain_controllers": dcs,
        "dcs_with_sensor": sum(1 for dc in dcs if dc.sensor_installed),
        "rows": [{"lic": lic, "value": lic.seats, "error": ""} for lic in usage],
        # The readiness targets: Defender for Endpoint P2 and Defender for Identity seats.
        "device_target": seats[LicenceProduct.DEFENDER_ENDPOINT_P2],
        "identity_target": seats[LicenceProduct.DEFENDER_IDENTITY],
        "directory": selectors.directory_counts(tenant=tenant, identities=identities),
        "settings_changed": sum(1 for s in settings_state if not s.is_default),
        "settings_total": len(settings_state),
    }
    return _render(request, "environment/overview.html", context)


# --- Devices ----------------------------------------------------------------------------------


def _device_group_filter(request: TenantRequest, raw: str | None) -> DeviceGroup | None:
    """The ``group`` filter: empty means all groups; a foreign or malformed id is a 404."""
    if not raw:
        return None
    return get_tenant_object_or_404(request, DeviceGroup, pk=raw)


def _selected_device_ids(request: TenantRequest) -> list[int]:
    """The ticked devices; a malformed id or another tenant's device is a 404."""
    raw = request.POST.getlist("device")
    ids: set[int] = set()
    for value in raw:
        device_id = parse_id(value)
        if device_id is None:
            raise Http404
        ids.add(device_id)
    if ids and Device.objects.filter(tenant=request.tenant, pk__in=ids).count() != len(ids):
        raise Http404
    return sorted(ids)


def _run_device_action(
    request: TenantRequest,
    form: DeviceActionForm,
    *,
    group: DeviceGroup | None,
    filters: selectors.DeviceFilters,
) -> str:
    tenant = request.tenant
    action = form.cleaned_data["action"]
    mode = form.cleaned_data.get("mode") or ""
    actor = request.user
    if action == "onboard_selected":
        n = services.devices_onboard(tenant=tenant, acting_user=actor, device_ids=form.selected)
        return f"Onboarded {n:,} device{'s' if n != 1 else ''}." if n else "The selected devices are already onboarded."
    if action in {"onboard_matching", "onboard_count"}:
        if filters.onboarding == OnboardingState.ONBOARDED:
            return "No devices to onboard: the list is filtered to onboarded devices."
        n = services.devices_onboard(
            tenant=tenant,
            acting_user=actor,
            device_group=group,
            name_contains=filters.q or None,
            av_mode=filters.av or None,
            count=form.cleaned_data["count"] if action == "onboard_count" else None,
            all_devices=True,
            expected_version=form.cleaned_data["devices_was"] or None,
        )
        return f"Onboarded {n:,} device{'s' if n != 1 else ''}." if n else "No matching devices needed onboarding."
    if action in HIGH_VALUE_ACTIONS:
        tag = action == "high_value_selected"
        n = services.devices_set_high_value(tenant=tenant, acting_user=actor, device_ids=form.selected, high_value=tag)
        devices = f"{n:,} device{'s' if n != 1 else ''}"
        if not n:
            return "No devices changed: the selected devices are already " + ("tagged." if tag else "untagged.")
        return f"Tagged {devices} as high value." if tag else f"Removed the high-value tag from {devices}."
    label = AntivirusMode(mode).label.lower()
    if action == "av_selected":
        n = services.devices_set_antivirus_mode(tenant=tenant, acting_user=actor, mode=mode, device_ids=form.selected)
    else:
        n = services.devices_set_antivirus_mode(
            tenant=tenant,
            acting_user=actor,
            mode=mode,
            device_group=group,
            from_mode=filters.av or None,
            onboarding_state=filters.onboarding or None,
            name_contains=filters.q or None,
            all_devices=True,
            expected_version=form.cleaned_data["devices_was"] or None,
        )
    if not n:
        return f"No devices changed: they're already in {label} mode."
    return f"Defender Antivirus switched to {label} mode on {n:,} device{'s' if n != 1 else ''}."


@tenant_page(manage="writes")
@require_http_methods(["GET", "POST"])
def devices(request: TenantRequest) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    filters = selectors.parse_device_filters(params)
    group = _device_group_filter(request, (params.get("group") or "").strip())
    page_number = params.get("page") or 1

    def page(form: DeviceActionForm, outcome: str = "") -> HttpResponse:
        return _render(
            request, "environment/devices.html", _devices_context(request, filters, page_number, form, outcome)
        )

    if request.method != "POST":
        return page(DeviceActionForm())
    form = DeviceActionForm(request.POST, selected=_selected_device_ids(request))
    on_error(request, lambda error: page(_with_error(form, error)))
    require_valid(form)
    outcome = _run_device_action(request, form, group=group, filters=filters)
    if is_htmx(request):
        return page(DeviceActionForm(), outcome)
    messages.success(request, outcome)
    cursor = {k: request.POST[k][:128] for k in ("after", "before") if request.POST.get(k)}
    return redirect(_with_query(reverse("environment:devices"), {**filters.as_query(), **cursor, "page": page_number}))


def _devices_context(
    request: TenantRequest, filters: selectors.DeviceFilters, page_number: Any, form: DeviceActionForm, outcome: str
) -> dict[str, Any]:
    tenant = request.tenant
    params = request.POST if request.method == "POST" else request.GET
    # Queries: the device tally (counts, also of the filtered list), the device groups and one
    # keyset page of devices with their group joined: none of them grows with the devices.
    counts = selectors.device_counts(tenant=tenant)
    matching, more = selectors.device_matching(tenant=tenant, filters=filters, counts=counts)
    page = selectors.device_page(
        tenant=tenant,
        filters=filters,
        matching=matching,
        per_page=DEVICES_PER_PAGE,
        after=(params.get("after") or "")[:128],
        before=(params.get("before") or "")[:128],
        number=page_number,
    )
    query = filters.as_query()
    # Last seen, formatted once here: the template's date filter costs far more, fifty times a page.
    rows = []
    for device in page.object_list:
        seen = timezone.localtime(device.last_seen) if device.last_seen else None
        rows.append((device, seen.isoformat() if seen else "", f"{seen.day} {seen:%b %Y, %H:%M}" if seen else ""))
    return {
        "env_tab": "devices",
        "counts": counts,
        "groups": list(selectors.device_groups(tenant=tenant)),
        "filters": filters,
        "filter_query": urlencode(query),
        "page": page,
        "device_rows": rows,
        "cursor": _page_cursor(params, page),
        "previous_query": urlencode(page.previous_query(**query)),
        "next_query": urlencode(page.next_query(**query)),
        "matching": matching,
        "matching_more": more,
        "form": form,
        "outcome": outcome,
        "av_modes": AntivirusMode.choices,
        "onboarding_states": OnboardingState.choices,
        "actions": DEVICE_ACTIONS,
        "selected": set(form.selected) if form.is_bound else set(),
    }


def _page_cursor(params: Any, page: selectors.DevicePage) -> dict[str, Any]:
    """What brings the list back to this page after an action (the cursor it was reached by)."""
    cursor: dict[str, Any] = {"page": page.number}
    for key in ("after", "before"):
        if params.get(key):
            cursor[key] = params.get(key)[:128]
    return cursor


# --- Domain controllers ---------------------------------------------------------------------------


def _dc_context(request: TenantRequest, **extra: Any) -> dict[str, Any]:
    tenant = request.tenant
    dcs = list(selectors.domain_controllers_with_identities(tenant=tenant))
    return {
        "env_tab": "domain_controllers",
        "domain_controllers": dcs,
        "with_sensor": sum(1 for dc in dcs if dc.sensor_installed),
        "identities": selectors.identity_counts(tenant=tenant),
        "outcome": "",
        "error": "",
        **extra,
    }


@tenant_page
def domain_controllers(request: TenantRequest) -> HttpResponse:
    return _render(request, "environment/domain_controllers.html", _dc_context(request))


@tenant_page(manage=True)
@require_POST
def domain_controller_sensor(request: TenantRequest, pk: int) -> HttpResponse:
    dc = get_tenant_object_or_404(request, DomainController, pk=pk)
    action = request.POST.get("action")
    template = "environment/domain_controllers.html"
    on_error(request, lambda error: _render(request, template, _dc_context(request, error=error.message)))
    if action == "install":
        services.domain_controller_install_sensor(tenant=request.tenant, acting_user=request.user, domain_controller=dc)
        outcome = f"The Defender for Identity sensor is installed on {dc.name}."
    elif action == "uninstall":
        services.domain_controller_uninstall_sensor(
            tenant=request.tenant, acting_user=request.user, domain_controller=dc
        )
        outcome = f"The Defender for Identity sensor was removed from {dc.name}."
    else:
        raise Invalid("Choose whether to install or remove the sensor.")
    if is_htmx(request):
        return _render(request, template, _dc_context(request, outcome=outcome))
    messages.success(request, outcome)
    return redirect("environment:domain_controllers")


# --- Directory -----------------------------------------------------------------------------------


def _directory_context(request: TenantRequest, params: Any, **extra: Any) -> dict[str, Any]:
    tenant = request.tenant
    q = (params.get("q") or "").strip()[:100]
    status = params.get("status") or ""
    status = status if status in selectors.USER_STATUS_FILTERS else ""
    # Queries: users bounded COUNT + keyset page (with domain controller joined), groups bounded
    # COUNT + keyset page (member counts annotated), and the domain controllers for the "Add a
    # user" form: the same on any page of any directory. Each list keeps its own cursor (users:
    # after/before/page, groups: gafter/gbefore/gpage) so paging one leaves the other where it is.
    users = keyset_page(
        selectors.directory_users(tenant=tenant, q=q, status=status),
        field="display_name",
        per_page=USERS_PER_PAGE,
        after=params.get("after"),
        before=params.get("before"),
        number=params.get("page"),
    )
    groups = keyset_page(
        selectors.directory_groups(tenant=tenant, q=q),
        field="display_name",
        per_page=GROUPS_PER_PAGE,
        after=params.get("gafter"),
        before=params.get("gbefore"),
        number=params.get("gpage"),
        prefix="g",
    )
    dcs = selectors.domain_controller_choices(tenant=tenant)
    query = {k: v for k, v in {"q": q, "status": status}.items() if v}

    def link(*, users_at: dict[str, str], groups_at: dict[str, str]) -> str:
        # The list being paged gets its new cursor; the other keeps the one it was shown with.
        return urlencode({**query, **users_at, **groups_at})

    context = {
        "env_tab": "directory",
        "q": q,
        "status": status,
        "users": users,
        "groups": groups,
        "filter_query": urlencode(query),
        "keep": {**query, **users.current, **groups.current},
        "users_previous": link(users_at=users.previous_query, groups_at=groups.current) if users.has_previous else "",
        "users_next": link(users_at=users.next_query, groups_at=groups.current) if users.has_next else "",
        "groups_previous": link(users_at=users.current, groups_at=groups.previous_query) if groups.has_previous else "",
        "groups_next": link(users_at=users.current, groups_at=groups.next_query) if groups.has_next else "",
        "user_form": DirectoryUserForm(domain_controllers=dcs),
        "group_form": DirectoryGroupForm(),
        "open_form": "",
        "outcome": "",
    }
    context.update(extra)
    return context


@tenant_page
def directory(request: TenantRequest) -> HttpResponse:
    return _render(request, "environment/directory.html", _directory_context(request, request.GET))


def _directory_return(request: TenantRequest) -> str:
    """Back to the directory list the action was taken from (same search and page)."""
    keep = {k: request.POST.get(k, "") for k in KEEP_PARAMS}
    return _with_query(reverse("environment:directory"), keep)


@tenant_page(manage=True)
@require_POST
def directory_user_enabled(request: TenantRequest, pk: int) -> HttpResponse:
    user = get_tenant_object_or_404(request, DirectoryUser.objects.select_related("domain_controller"), pk=pk)
    raw = request.POST.get("enabled")
    if raw not in {"true", "false"}:
        messages.error(request, "Choose whether to enable or disable the user.")
        return HttpResponseRedirect(_directory_return(request))
    enabled = raw == "true"
    services.directory_user_set_enabled(
        tenant=request.tenant,
        acting_user=request.user,
        directory_user=user,
        enabled=enabled,
    )
    outcome = f"{user.display_name} is {'enabled' if enabled else 'disabled'}."
    if is_htmx(request):
        # Only the user's row changes: swap it in place.
        return render_page(
            request,
            "environment/directory.html#user_row",
            {"u": user, "row_outcome": outcome, "keep": {k: request.POST.get(k, "") for k in KEEP_PARAMS}},
        )
    messages.success(request, outcome)
    return HttpResponseRedirect(_directory_return(request))


@tenant_page(manage=True)
@require_POST
def directory_user_high_value(request: TenantRequest, pk: int) -> HttpResponse:
    user = get_tenant_object_or_404(request, DirectoryUser.objects.select_related("domain_controller"), pk=pk)
    raw = request.POST.get("high_value")
    if raw not in {"true", "false"}:
        messages.error(request, "Choose whether to tag the user as high value or remove the tag.")
        return HttpResponseRedirect(_directory_return(request))
    high_value = raw == "true"
    services.directory_user_set_high_value(
        tenant=request.tenant, acting_user=request.user, directory_user=user, high_value=high_value
    )
    outcome = (
        f"{user.display_name} is tagged as high value."
        if high_value
        else f"{user.display_name} is no longer tagged as high value."
    )
    if is_htmx(request):
        return render_page(
            request,
            "environment/directory.html#user_row",
            {"u": user, "row_outcome": outcome, "keep": {k: request.POST.get(k, "") for k in KEEP_PARAMS}},
        )
    messages.success(request, outcome)
    return HttpResponseRedirect(_directory_return(request))


@tenant_page(manage=True)
@require_http_methods(["GET", "POST"])
def directory_user_delete(request: TenantRequest, pk: int) -> HttpResponse:
    """Ask first (GET), then delete (POST with confirm=yes) the user as the confirmation showed it."""
    confirmed = request.method == "POST" and request.POST.get("confirm") == "yes"
    users = DirectoryUser.objects.select_related("domain_controller")
    try:
        user = get_tenant_object_or_404(request, users, pk=pk)
    except Http404:
        # The same confirmation sent again: the user is gone, as asked.
        if confirmed and selectors.directory_user_deleted_recently(tenant=request.tenant, pk=pk, now=timezone.now()):
            messages.info(request, "That user was already deleted from the directory.")
            return HttpResponseRedirect(_directory_return(request))
        raise
    params = request.POST if request.method == "POST" else request.GET
    keep = {k: params.get(k, "") for k in KEEP_PARAMS}

    def page(shown: DirectoryUser, error: str = "") -> HttpResponse:
        context = {
            "nav": "environment",
            "env_tab": "directory",
            "u": shown,
            "keep": keep,
            "error": error,
            "back_url": _with_query(reverse("environment:directory"), keep),
        }
        return render_page(request, "environment/directory_user_delete.html", context)

    if not confirmed:
        return page(user)
    # Changed since the confirmation was read: 409, the confirmation again with what is there now.
    on_error(request, lambda error: page(get_tenant_object_or_404(request, users, pk=pk), error.message))
    name = user.display_name
    services.directory_user_delete(
        tenant=request.tenant,
        acting_user=request.user,
        directory_user=user,
        expected_updated_at=parse_datetime(request.POST.get("expected")),
    )
    messages.success(request, f"{name} was deleted from the directory.")
    return HttpResponseRedirect(_directory_return(request))


@tenant_page(manage=True)
@require_POST
def directory_user_create(request: TenantRequest) -> HttpResponse:
    tenant = request.tenant
    dcs = selectors.domain_controller_choices(tenant=tenant)
    form = DirectoryUserForm(request.POST, domain_controllers=dcs)
    on_error(request, lambda error: _directory_form_page(request, "user", _with_error(form, error)))
    require_valid(form)
    dc_id = form.cleaned_data["domain_controller"]
    dc = get_tenant_object_or_404(request, DomainController, pk=dc_id) if dc_id else None
    user = services.directory_user_create(
        tenant=tenant,
        acting_user=request.user,
        display_name=form.cleaned_data["display_name"],
        user_principal_name=form.cleaned_data["user_principal_name"],
        mail=form.cleaned_data["mail"],
        job_title=form.cleaned_data["job_title"],
        domain_controller=dc,
    )
    messages.success(request, f"{user.display_name} was added to the directory.")
    return redirect(_with_query(reverse("environment:directory"), {"q": user.user_principal_name}))


@tenant_page(manage=True)
@require_POST
def directory_group_create(request: TenantRequest) -> HttpResponse:
    form = DirectoryGroupForm(request.POST)
    on_error(request, lambda error: _directory_form_page(request, "group", _with_error(form, error)))
    require_valid(form)
    data = dict(form.cleaned_data)
    group = services.directory_group_create(
        tenant=request.tenant, acting_user=request.user, member_upns=data.pop("members"), **data
    )
    messages.success(request, f"The group {group.display_name} was added.")
    return redirect(_with_query(reverse("environment:directory"), {"q": group.display_name}))


def _directory_form_page(request: TenantRequest, which: str, form: forms.BaseForm) -> HttpResponse:
    """The directory with the "Add a user" or "Add a group" form open, as submitted, with its errors."""
    context = _directory_context(request, request.POST, open_form=which, **{f"{which}_form": form})
    return render_page(request, "environment/directory.html", {**context, "nav": "environment"})


# --- Security settings -------------------------------------------------------------------------------


def _settings_context(request: TenantRequest, **extra: Any) -> dict[str, Any]:
    # One query: the tenant's stored values, merged with the catalogue's defaults.
    row_errors: dict[str, str] = extra.pop("row_errors", {})
    submitted: dict[str, str] = extra.pop("submitted", {})
    products = [
        (
            product,
            [
                {"s": state, "value": submitted.get(state.key, state.value), "error": row_errors.get(state.key, "")}
                for state in states
            ],
        )
        for product, states in selectors.security_settings_by_product(tenant=request.tenant)
    ]
    return {"env_tab": "settings", "products": products, "outcome": "", "error": "", **extra}


@tenant_page(manage="writes")
@require_http_methods(["GET", "POST"])
def security_settings(request: TenantRequest) -> HttpResponse:
    template = "environment/settings.html"
    if request.method == "GET":
        return _render(request, template, _settings_context(request))
    form = SecuritySettingForm(request.POST)
    key = request.POST.get("key", "")

    def refused(error: ApplicationError) -> HttpResponse:
        # The error in the setting's row, the admin's value kept (409 when someone else changed it meanwhile).
        errors = _form_errors(form) if isinstance(error, InvalidForm) else error.message
        if key in SETTINGS_BY_KEY:
            submitted = {key: request.POST.get("value", "")}
            return _render(request, template, _settings_context(request, row_errors={key: errors}, submitted=submitted))
        return _render(request, template, _settings_context(request, error=errors))

    on_error(request, refused)
    require_valid(form)
    changed = services.security_setting_set(
        tenant=request.tenant,
        acting_user=request.user,
        key=form.cleaned_data["key"],
        value=form.cleaned_data["value"],
        expected_value=form.cleaned_data["expected"] or None,
    )
    spec = SETTINGS_BY_KEY[form.cleaned_data["key"]]
    label = dict(spec.choices)[form.cleaned_data["value"]]
    outcome = f"{spec.label} is set to {label}." if changed else f"{spec.label} was already {label}."
    if is_htmx(request):
        return _render(request, template, _settings_context(request, outcome=outcome))
    messages.success(request, outcome)
    return redirect("environment:settings")


# --- Licences ------------------------------------------------------------------------------------------


def _licences_context(request: TenantRequest, **extra: Any) -> dict[str, Any]:
    tenant = request.tenant
    # Three queries: device counts, identity counts and the licence rows.
    devices_ = selectors.device_counts(tenant=tenant)
    identities = selectors.identity_counts(tenant=tenant)
    row_errors: dict[str, str] = extra.pop("row_errors", {})
    submitted: dict[str, str] = extra.pop("submitted", {})
    usage = selectors.licence_usage(tenant=tenant, devices=devices_, identities=identities)
    return {
        "env_tab": "licences",
        "licences": usage,
        # Each row with what the admin typed and its error, after a bad value.
        "rows": [
            {"lic": lic, "value": submitted.get(lic.product, lic.seats), "error": row_errors.get(lic.product, "")}
            for lic in usage
        ],
        "outcome": "",
        "error": "",
        **extra,
    }


@tenant_page(manage="writes")
@require_http_methods(["GET", "POST"])
def licences(request: TenantRequest) -> HttpResponse:
    template = "environment/licences.html"
    if request.method == "GET":
        return _render(request, template, _licences_context(request))
    form = LicenceSeatsForm(request.POST)
    product = request.POST.get("product", "")

    def refused(error: ApplicationError) -> HttpResponse:
        # The error in the licence's row, the admin's count kept (409 when someone else changed it meanwhile).
        errors = _form_errors(form) if isinstance(error, InvalidForm) else error.message
        if product in LicenceProduct.values:
            submitted = {product: request.POST.get("seats", "")}
            return _render(
                request, template, _licences_context(request, row_errors={product: errors}, submitted=submitted)
            )
        return _render(request, template, _licences_context(request, error=errors))

    on_error(request, refused)
    require_valid(form)
    changed = services.licence_set_seats(
        tenant=request.tenant,
        acting_user=request.user,
        product=form.cleaned_data["product"],
        seats=form.cleaned_data["seats"],
        expected_seats=form.cleaned_data["expected"],
    )
    seats = form.cleaned_data["seats"]
    name = LicenceProduct(form.cleaned_data["product"]).label
    outcome = f"{name}: {seats:,} seats." if changed else f"{name} already has {seats:,} seats."
    if is_htmx(request):
        return _render(request, template, _licences_context(request, outcome=outcome))
    messages.success(request, outcome)
    return redirect("environment:licences")
