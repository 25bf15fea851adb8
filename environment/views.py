"""The Environment area: the emulated Microsoft side of a tenant.

Every member can look; only Global Administrators and Security
Administrators change things (``require_manage`` -> 403 for the others).
Objects are fetched through ``get_tenant_object_or_404``, so another
tenant's id or a malformed id is a 404. Writes go through
``environment.services``; a ``ValidationError`` from a service re-renders
the page with the message, never a 500.

Every form works as a plain POST (redirect-after-post with a message) and,
when htmx is present, swaps the page's named partial in place.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from environment import selectors, services
from environment.forms import (
    DEVICE_ACTIONS,
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
from tenancy.access import get_tenant_object_or_404, require_manage, tenant_view
from tenancy.bounds import parse_datetime, parse_id
from tenancy.models import Tenant, User

DEVICES_PER_PAGE = 50
USERS_PER_PAGE = 50
GROUPS_PER_PAGE = 25
# The directory list's state, carried through row actions so the admin lands back where they were.
KEEP_PARAMS = ("q", "status", "page", "gpage")


def _tenant(request: HttpRequest) -> Tenant:
    """The tenant ``tenant_view`` resolved for this request."""
    return request.tenant  # type: ignore[attr-defined, no-any-return]


def _actor(request: HttpRequest) -> User:
    # tenant_view has made sure the user is signed in.
    return cast(User, request.user)


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _bad_status(request: HttpRequest) -> int:
    return 200 if _htmx(request) else 400


def _messages_text(error: ValidationError) -> str:
    return " ".join(str(m) for m in error.messages)


def _render(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    """The whole page, or only its ``panel`` partial for an htmx request."""
    context.setdefault("nav", "environment")
    if getattr(request, "htmx", False):
        return render(request, f"{template}#panel", context, status=status)
    return render(request, template, context, status=status)


def _with_query(url: str, params: dict[str, Any]) -> str:
    params = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{url}?{urlencode(params)}" if params else url


# --- Overview ---------------------------------------------------------------------------------


@tenant_view
def overview(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
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


def _device_group_filter(request: HttpRequest, raw: str | None) -> DeviceGroup | None:
    """The ``group`` filter: empty means all groups; a foreign or malformed id is a 404."""
    if not raw:
        return None
    return get_tenant_object_or_404(request, DeviceGroup, pk=raw)


def _selected_device_ids(request: HttpRequest) -> list[int]:
    """The ticked devices; a malformed id or another tenant's device is a 404."""
    raw = request.POST.getlist("device")
    ids: set[int] = set()
    for value in raw:
        device_id = parse_id(value)
        if device_id is None:
            raise Http404
        ids.add(device_id)
    if ids and Device.objects.filter(tenant=_tenant(request), pk__in=ids).count() != len(ids):
        raise Http404
    return sorted(ids)


def _run_device_action(
    request: HttpRequest,
    form: DeviceActionForm,
    *,
    group: DeviceGroup | None,
    filters: selectors.DeviceFilters,
) -> str:
    tenant = _tenant(request)
    action = form.cleaned_data["action"]
    mode = form.cleaned_data.get("mode") or ""
    actor = _actor(request)
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
        )
        return f"Onboarded {n:,} device{'s' if n != 1 else ''}." if n else "No matching devices needed onboarding."
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
        )
    if not n:
        return f"No devices changed: they're already in {label} mode."
    return f"Defender Antivirus switched to {label} mode on {n:,} device{'s' if n != 1 else ''}."


@require_http_methods(["GET", "POST"])
@tenant_view
def devices(request: HttpRequest) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    filters = selectors.parse_device_filters(params)
    group = _device_group_filter(request, (params.get("group") or "").strip())
    page_number = params.get("page") or 1
    outcome = ""
    status = 200
    if request.method == "POST":
        require_manage(request)
        form = DeviceActionForm(request.POST, selected=_selected_device_ids(request))
        if form.is_valid():
            try:
                outcome = _run_device_action(request, form, group=group, filters=filters)
            except ValidationError as exc:
                form.add_error(None, _messages_text(exc))
            else:
                if not _htmx(request):
                    messages.success(request, outcome)
                    cursor = {k: request.POST[k][:128] for k in ("after", "before") if request.POST.get(k)}
                    return redirect(
                        _with_query(
                            reverse("environment:devices"), {**filters.as_query(), **cursor, "page": page_number}
                        )
                    )
                form = DeviceActionForm()
        if form.errors:
            status = 200 if _htmx(request) else 400
    else:
        form = DeviceActionForm()
    return _render(
        request,
        "environment/devices.html",
        _devices_context(request, filters, page_number, form, outcome),
        status=status,
    )


def _devices_context(
    request: HttpRequest, filters: selectors.DeviceFilters, page_number: Any, form: DeviceActionForm, outcome: str
) -> dict[str, Any]:
    tenant = _tenant(request)
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
    for device in page.object_list:
        # Formatted once here: the template's date filter costs far more, fifty times a page.
        seen = timezone.localtime(device.last_seen) if device.last_seen else None
        device.seen_iso = seen.isoformat() if seen else ""  # type: ignore[attr-defined]
        device.seen_label = f"{seen.day} {seen:%b %Y, %H:%M}" if seen else ""  # type: ignore[attr-defined]
    return {
        "env_tab": "devices",
        "counts": counts,
        "groups": list(selectors.device_groups(tenant=tenant)),
        "filters": filters,
        "filter_query": urlencode(query),
        "page": page,
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


def _dc_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    tenant = _tenant(request)
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


@tenant_view
def domain_controllers(request: HttpRequest) -> HttpResponse:
    return _render(request, "environment/domain_controllers.html", _dc_context(request))


@require_POST
@tenant_view
def domain_controller_sensor(request: HttpRequest, pk: int) -> HttpResponse:
    require_manage(request)
    dc = get_tenant_object_or_404(request, DomainController, pk=pk)
    action = request.POST.get("action")
    try:
        if action == "install":
            services.domain_controller_install_sensor(
                tenant=_tenant(request),
                acting_user=_actor(request),
                domain_controller=dc,
            )
            outcome = f"The Defender for Identity sensor is installed on {dc.name}."
        elif action == "uninstall":
            services.domain_controller_uninstall_sensor(
                tenant=_tenant(request),
                acting_user=_actor(request),
                domain_controller=dc,
            )
            outcome = f"The Defender for Identity sensor was removed from {dc.name}."
        else:
            raise ValidationError("Choose whether to install or remove the sensor.")
    except ValidationError as exc:
        error = _messages_text(exc)
        return _render(
            request,
            "environment/domain_controllers.html",
            _dc_context(request, error=error),
            status=200 if _htmx(request) else 400,
        )
    if _htmx(request):
        return _render(request, "environment/domain_controllers.html", _dc_context(request, outcome=outcome))
    messages.success(request, outcome)
    return redirect("environment:domain_controllers")


# --- Directory -----------------------------------------------------------------------------------


def _directory_context(request: HttpRequest, params: Any, **extra: Any) -> dict[str, Any]:
    tenant = _tenant(request)
    q = (params.get("q") or "").strip()[:100]
    status = params.get("status") or ""
    status = status if status in selectors.USER_STATUS_FILTERS else ""
    # Queries: users COUNT + page (with domain controller joined), groups
    # COUNT + page (member counts annotated), and the domain controllers for
    # the "Add a user" form.
    users = Paginator(selectors.directory_users(tenant=tenant, q=q, status=status), USERS_PER_PAGE).get_page(
        params.get("page") or 1
    )
    groups = Paginator(selectors.directory_groups(tenant=tenant, q=q), GROUPS_PER_PAGE).get_page(
        params.get("gpage") or 1
    )
    dcs = [(str(dc.pk), dc.name) for dc in DomainController.objects.filter(tenant=tenant).order_by("name")]
    query = {k: v for k, v in {"q": q, "status": status}.items() if v}
    context = {
        "env_tab": "directory",
        "q": q,
        "status": status,
        "users": users,
        "groups": groups,
        "filter_query": urlencode(query),
        "keep": {**query, "page": users.number, "gpage": groups.number},
        "user_form": DirectoryUserForm(domain_controllers=dcs),
        "group_form": DirectoryGroupForm(),
        "open_form": "",
        "outcome": "",
    }
    context.update(extra)
    return context


@tenant_view
def directory(request: HttpRequest) -> HttpResponse:
    return _render(request, "environment/directory.html", _directory_context(request, request.GET))


def _directory_return(request: HttpRequest) -> str:
    """Back to the directory list the action was taken from (same search and page)."""
    keep = {k: request.POST.get(k, "") for k in KEEP_PARAMS}
    return _with_query(reverse("environment:directory"), keep)


@require_POST
@tenant_view
def directory_user_enabled(request: HttpRequest, pk: int) -> HttpResponse:
    require_manage(request)
    user = get_tenant_object_or_404(request, DirectoryUser.objects.select_related("domain_controller"), pk=pk)
    raw = request.POST.get("enabled")
    if raw not in {"true", "false"}:
        messages.error(request, "Choose whether to enable or disable the user.")
        return HttpResponseRedirect(_directory_return(request))
    enabled = raw == "true"
    services.directory_user_set_enabled(
        tenant=_tenant(request),
        acting_user=_actor(request),
        directory_user=user,
        enabled=enabled,
    )
    outcome = f"{user.display_name} is {'enabled' if enabled else 'disabled'}."
    if _htmx(request):
        # Only the user's row changes: swap it in place.
        return render(
            request,
            "environment/directory.html#user_row",
            {"u": user, "row_outcome": outcome, "keep": {k: request.POST.get(k, "") for k in KEEP_PARAMS}},
        )
    messages.success(request, outcome)
    return HttpResponseRedirect(_directory_return(request))


@require_http_methods(["GET", "POST"])
@tenant_view
def directory_user_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask first (GET), then delete (POST with confirm=yes) the user as the confirmation showed it."""
    require_manage(request)
    confirmed = request.method == "POST" and request.POST.get("confirm") == "yes"
    try:
        user = get_tenant_object_or_404(request, DirectoryUser.objects.select_related("domain_controller"), pk=pk)
    except Http404:
        # The same confirmation sent again: the user is gone, as asked.
        if confirmed and selectors.directory_user_deleted_recently(tenant=_tenant(request), pk=pk, now=timezone.now()):
            messages.info(request, "That user was already deleted from the directory.")
            return HttpResponseRedirect(_directory_return(request))
        raise
    error, status = "", 200
    if confirmed:
        name = user.display_name
        try:
            services.directory_user_delete(
                tenant=_tenant(request),
                acting_user=_actor(request),
                directory_user=user,
                expected_updated_at=parse_datetime(request.POST.get("expected")),
            )
        except ValidationError as exc:
            # Changed since the confirmation was read: 409, the confirmation again with what is there now.
            error, status = _messages_text(exc), 409 if exc.code == "stale_edit" else 400
            user.refresh_from_db()
        else:
            messages.success(request, f"{name} was deleted from the directory.")
            return HttpResponseRedirect(_directory_return(request))
    params = request.POST if request.method == "POST" else request.GET
    keep = {k: params.get(k, "") for k in KEEP_PARAMS}
    return render(
        request,
        "environment/directory_user_delete.html",
        {
            "nav": "environment",
            "env_tab": "directory",
            "u": user,
            "keep": keep,
            "error": error,
            "back_url": _with_query(reverse("environment:directory"), keep),
        },
        status=status,
    )


@require_POST
@tenant_view
def directory_user_create(request: HttpRequest) -> HttpResponse:
    require_manage(request)
    tenant = _tenant(request)
    dcs = [(str(dc.pk), dc.name) for dc in DomainController.objects.filter(tenant=tenant).order_by("name")]
    form = DirectoryUserForm(request.POST, domain_controllers=dcs)
    if form.is_valid():
        dc_id = form.cleaned_data["domain_controller"]
        dc = get_tenant_object_or_404(request, DomainController, pk=dc_id) if dc_id else None
        try:
            user = services.directory_user_create(
                tenant=tenant,
                acting_user=_actor(request),
                display_name=form.cleaned_data["display_name"],
                user_principal_name=form.cleaned_data["user_principal_name"],
                mail=form.cleaned_data["mail"],
                job_title=form.cleaned_data["job_title"],
                domain_controller=dc,
            )
        except ValidationError as exc:
            _attach(form, exc)
        else:
            messages.success(request, f"{user.display_name} was added to the directory.")
            return redirect(_with_query(reverse("environment:directory"), {"q": user.user_principal_name}))
    context = _directory_context(request, request.POST, user_form=form, open_form="user")
    return render(request, "environment/directory.html", {**context, "nav": "environment"}, status=400)


@require_POST
@tenant_view
def directory_group_create(request: HttpRequest) -> HttpResponse:
    require_manage(request)
    form = DirectoryGroupForm(request.POST)
    if form.is_valid():
        try:
            group = services.directory_group_create(
                tenant=_tenant(request),
                acting_user=_actor(request),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            _attach(form, exc)
        else:
            messages.success(request, f"The group {group.display_name} was added.")
            return redirect(_with_query(reverse("environment:directory"), {"q": group.display_name}))
    context = _directory_context(request, request.POST, group_form=form, open_form="group")
    return render(request, "environment/directory.html", {**context, "nav": "environment"}, status=400)


def _attach(form: Any, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (or the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- Security settings -------------------------------------------------------------------------------


def _settings_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
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
        for product, states in selectors.security_settings_by_product(tenant=_tenant(request))
    ]
    return {"env_tab": "settings", "products": products, "outcome": "", "error": "", **extra}


@require_http_methods(["GET", "POST"])
@tenant_view
def security_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render(request, "environment/settings.html", _settings_context(request))
    require_manage(request)
    form = SecuritySettingForm(request.POST)
    key = request.POST.get("key", "")
    stale = False
    if form.is_valid():
        try:
            changed = services.security_setting_set(
                tenant=_tenant(request),
                acting_user=_actor(request),
                key=form.cleaned_data["key"],
                value=form.cleaned_data["value"],
                expected_value=form.cleaned_data["expected"] or None,
            )
        except ValidationError as exc:
            stale = exc.code == "stale_edit"
            form.add_error(None, _messages_text(exc))
        else:
            spec = SETTINGS_BY_KEY[form.cleaned_data["key"]]
            label = dict(spec.choices)[form.cleaned_data["value"]]
            outcome = f"{spec.label} is set to {label}." if changed else f"{spec.label} was already {label}."
            if _htmx(request):
                return _render(request, "environment/settings.html", _settings_context(request, outcome=outcome))
            messages.success(request, outcome)
            return redirect("environment:settings")
    errors = " ".join(str(m) for msgs in form.errors.values() for m in msgs)
    context = (
        _settings_context(request, row_errors={key: errors}, submitted={key: request.POST.get("value", "")})
        if key in SETTINGS_BY_KEY
        else _settings_context(request, error=errors)
    )
    # Changed by someone else since the page was read: 409, the admin's value kept in its row.
    return _render(request, "environment/settings.html", context, status=409 if stale else _bad_status(request))


# --- Licences ------------------------------------------------------------------------------------------


def _licences_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    tenant = _tenant(request)
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


@require_http_methods(["GET", "POST"])
@tenant_view
def licences(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render(request, "environment/licences.html", _licences_context(request))
    require_manage(request)
    form = LicenceSeatsForm(request.POST)
    product = request.POST.get("product", "")
    stale = False
    if form.is_valid():
        try:
            changed = services.licence_set_seats(
                tenant=_tenant(request),
                acting_user=_actor(request),
                product=form.cleaned_data["product"],
                seats=form.cleaned_data["seats"],
                expected_seats=form.cleaned_data["expected"],
            )
        except ValidationError as exc:
            stale = exc.code == "stale_edit"
            form.add_error(None, _messages_text(exc))
        else:
            seats = form.cleaned_data["seats"]
            name = LicenceProduct(form.cleaned_data["product"]).label
            outcome = f"{name}: {seats:,} seats." if changed else f"{name} already has {seats:,} seats."
            if _htmx(request):
                return _render(request, "environment/licences.html", _licences_context(request, outcome=outcome))
            messages.success(request, outcome)
            return redirect("environment:licences")
    errors = " ".join(str(m) for msgs in form.errors.values() for m in msgs)
    known = product in LicenceProduct.values
    context = (
        _licences_context(request, row_errors={product: errors}, submitted={product: request.POST.get("seats", "")})
        if known
        else _licences_context(request, error=errors)
    )
    return _render(request, "environment/licences.html", context, status=409 if stale else _bad_status(request))
