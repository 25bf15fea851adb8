"""Settings > Defender Experts > Permissions.

Reads come from one snapshot (two queries), the device-group aggregate (one)
and the recent history (one), so the page costs the same whatever the size
of the tenant. Every POST works as a plain form (post/redirect/get) and, with
htmx, swaps the page's ``content`` partial in place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from audit.models import AuditEvent
from permissions.evaluator import effective_access
from permissions.exceptions import (
    ALL_DEVICES_WARNING,
    SKIP_PERMISSIONS_WARNING,
    AllDevicesNeedsConfirmation,
    PermissionsError,
    ReauthenticationRequired,
    ReducedAccessNeedsConfirmation,
    StaleEdit,
)
from permissions.forms import AllDevicesForm, LevelsForm, RemoveForm, RenewForm, prefill
from permissions.models import AccessGrant, AccessState
from permissions.selectors import access_health, access_levels_state, access_snapshot, device_scope
from permissions.services import (
    access_grant_renew,
    access_levels_set,
    all_devices_set,
    provider_access_remove,
    provider_access_restore,
)
from tenancy.access import get_tenant_object_or_404, tenant_admin_view, tenant_view
from tenancy.reauth import recently_authenticated
from tenancy.request_ip import client_ip

RECENT_HISTORY = 10
TEMPLATE = "permissions/index.html"


def _page_context(request: HttpRequest, **forms_and_flags: Any) -> dict[str, Any]:
    tenant = request.tenant  # type: ignore[attr-defined]
    snapshot = access_snapshot(tenant=tenant)
    state = access_levels_state(tenant=tenant, snapshot=snapshot)
    scope = device_scope(tenant=tenant)
    history = list(
        AuditEvent.objects.for_tenant(tenant)
        .filter(action__startswith="permissions.")
        .order_by("-created_at", "-id")[:RECENT_HISTORY]
    )
    ctx: dict[str, Any] = {
        "nav": "permissions",
        "state": state,
        "health": access_health(tenant=tenant, snapshot=snapshot),
        "scope": scope,
        "effective": effective_access(tenant=tenant, snapshot=snapshot, scope=scope),
        "history": history,
        "grants": sorted(state.grants.values(), key=lambda g: g.level),
        "skip_warning": SKIP_PERMISSIONS_WARNING,
        "all_devices_warning": ALL_DEVICES_WARNING,
    }
    initial_levels = {
        # Seed: Investigate incidents and guide my responses is the default choice,
        # preselected whenever access is being granted or restored.
        "investigate": state.investigate if state.provider_access_granted else True,
        "respond": state.respond,
        "version": state.version,
    }
    # One form chooses the access levels in every state; granting the first
    # level grants service provider access, and after a removal the same form
    # restores it (it then posts to ``restore``).
    ctx["levels_form"] = LevelsForm(initial=initial_levels)
    ctx["levels_action"] = "restore" if state.removed else "levels"
    # Durations only matter for a level that can still be turned on.
    ctx["can_grant_more"] = not (state.provider_access_granted and state.investigate and state.respond)
    ctx["all_devices_form"] = AllDevicesForm(initial={"all_devices": state.all_devices, "version": state.version})
    ctx["remove_form"] = RemoveForm(initial={"version": state.version, "confirm": True})
    ctx["renew_initial"] = {"version": state.version}
    ctx.update(forms_and_flags)
    # One renew form per live grant, each with its own ids; the one the admin
    # just submitted (or is coming back to after the password prompt) keeps its values.
    rows = []
    for g in ctx["grants"]:
        auto_id = f"renew{g.pk}_%s"
        if ctx.get("renew_grant") == g.pk and "renew_form" in ctx:
            form = ctx["renew_form"]
        elif ctx.get("renew_grant") == g.pk:
            form = RenewForm(initial=ctx["renew_initial"], auto_id=auto_id)
        else:
            form = RenewForm(initial={"version": state.version}, auto_id=auto_id)
        rows.append((g, form))
    ctx["grant_rows"] = rows
    return ctx


def _render(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    ctx = _page_context(request, **extra)
    if request.htmx:  # type: ignore[attr-defined]
        # htmx swaps only the content; 200 so it does swap (the message says what happened).
        return render(request, f"{TEMPLATE}#content", ctx)
    return render(request, TEMPLATE, ctx, status=status)


def _done(request: HttpRequest, text: str, anchor: str = "") -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]
        return _render(request, notice=("success", text))
    messages.success(request, text)
    return HttpResponseRedirect(reverse("permissions:index") + anchor)


def _conflict(request: HttpRequest, exc: StaleEdit) -> HttpResponse:
    return _render(request, status=409, conflict=exc)


def _reauth(request: HttpRequest, params: dict[str, Any], anchor: str) -> HttpResponse:
    """Send the admin to the password prompt; their choices come back as GET parameters (nothing applied yet)."""
    back = reverse("permissions:index") + "?" + urlencode({**params, "reauthed": "1"}) + anchor
    target = reverse("confirm_password") + "?" + urlencode({"next": back})
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)


def _choice_params(form: Any, kind: str) -> dict[str, Any]:
    data = form.cleaned_data
    out = {"form": kind, "duration": data.get("duration", ""), "version": data.get("version", "")}
    if data.get("custom_end"):
        out["custom_end"] = data["custom_end"].isoformat()
    for key in ("investigate", "respond"):
        if key in data:
            out[key] = "1" if data[key] else "0"
    return out


@tenant_view
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    extra: dict[str, Any] = {}
    params = request.GET
    if params.get("reauthed") and request.membership.can_manage:  # type: ignore[attr-defined]
        # Back from the password prompt: show the admin's pending choice, ready to save.
        kind = params.get("form")
        values = prefill(params, ("investigate", "respond", "duration", "custom_end", "version"))
        if kind == "levels":
            extra["levels_form"] = LevelsForm(initial=values)
            extra["pending_save"] = "levels"
        elif kind == "restore":
            extra["levels_form"] = LevelsForm(initial=values)
            extra["pending_save"] = "restore"
        elif kind == "renew" and params.get("grant", "").isdigit():
            extra["renew_initial"] = values
            extra["renew_grant"] = int(params["grant"])
            extra["pending_save"] = "renew"
    return _render(request, **extra)


@tenant_admin_view
@require_POST
def levels(request: HttpRequest) -> HttpResponse:
    form = LevelsForm(request.POST)
    if not form.is_valid():
        return _render(request, status=400, levels_form=form)
    data = form.cleaned_data
    was = access_levels_state(tenant=request.tenant)  # type: ignore[attr-defined]
    if was.state == AccessState.PENDING and not (data["investigate"] or data["respond"]):
        form.add_error(None, "Turn on at least one access level to grant service provider access.")
        return _render(request, status=400, levels_form=form)
    try:
        state = access_levels_set(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            investigate=data["investigate"],
            respond=data["respond"],
            expected_version=data["version"],
            confirm_reduced_access=data["confirm"],
            recently_authenticated=recently_authenticated(request),
            ends_at=form.ends_at,
            ip_address=client_ip(request),
        )
    except StaleEdit as exc:
        cur = exc.current
        if (
            cur
            and cur.provider_access_granted
            and (cur.investigate, cur.respond) == (data["investigate"], data["respond"])
        ):
            # A double submit (or two admins making the same change): nothing would be overwritten.
            return _done(request, "Access levels saved.", "#access-levels")
        return _conflict(request, exc)
    except ReauthenticationRequired:
        return _reauth(request, _choice_params(form, "levels"), "#access-levels")
    except ReducedAccessNeedsConfirmation as exc:
        return _render(request, levels_form=form, confirm_levels=exc)
    except PermissionsError as exc:
        # Shown at the top: the form it came from may not be on the page any more
        # (an ended grant, access removed meanwhile).
        return _render(request, status=400, notice=("error", exc.message), levels_form=form)
    if state.version == was.version:
        return _done(request, "Nothing changed: the access levels were already as you chose.", "#access-levels")
    if was.state == AccessState.PENDING and state.provider_access_granted:
        return _done(
            request, f"Service provider access granted to {state.provider_name}, with the access levels you chose."
        )
    return _done(request, "Access levels saved.", "#access-levels")


@tenant_admin_view
@require_POST
def all_devices(request: HttpRequest) -> HttpResponse:
    form = AllDevicesForm(request.POST)
    if not form.is_valid():
        return _render(request, status=400, all_devices_form=form)
    data = form.cleaned_data
    try:
        all_devices_set(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            enabled=data["all_devices"],
            expected_version=data["version"],
            confirm=data["confirm"],
            ip_address=client_ip(request),
        )
    except StaleEdit as exc:
        if exc.current and exc.current.all_devices == data["all_devices"]:
            on = data["all_devices"]  # already as requested (a double submit): nothing to overwrite
            return _done(request, f"Access security data from all devices is {'on' if on else 'off'}.", "#all-devices")
        return _conflict(request, exc)
    except AllDevicesNeedsConfirmation as exc:
        return _render(request, all_devices_form=form, confirm_all_devices=exc)
    except PermissionsError as exc:
        # Shown at the top: the form it came from may not be on the page any more
        # (an ended grant, access removed meanwhile).
        return _render(request, status=400, notice=("error", exc.message), all_devices_form=form)
    on = data["all_devices"]
    return _done(request, f"Access security data from all devices is {'on' if on else 'off'}.", "#all-devices")


@tenant_admin_view
@require_POST
def renew(request: HttpRequest, grant_id: str) -> HttpResponse:
    grant = get_tenant_object_or_404(request, AccessGrant, pk=grant_id)
    form = RenewForm(request.POST, auto_id=f"renew{grant.pk}_%s", extend_from=grant.ends_at)
    if not form.is_valid():
        return _render(request, status=400, renew_form=form, renew_grant=grant.pk)
    ends_at = form.ends_at
    assert ends_at is not None  # noqa: S101 - the form guarantees it when valid
    try:
        access_grant_renew(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            grant_id=grant.pk,
            expected_version=form.cleaned_data["version"],
            ends_at=ends_at,
            recently_authenticated=recently_authenticated(request),
            ip_address=client_ip(request),
        )
    except StaleEdit as exc:
        return _conflict(request, exc)
    except ReauthenticationRequired:
        return _reauth(request, {**_choice_params(form, "renew"), "grant": grant.pk}, "#grants")
    except PermissionsError as exc:
        # Shown at the top: the form it came from may not be on the page any more
        # (an ended grant, access removed meanwhile).
        return _render(request, status=400, notice=("error", exc.message), renew_form=form, renew_grant=grant.pk)
    return _done(request, f"{grant.get_level_display()} renewed until {ends_at:%d %b %Y}.", "#grants")


@tenant_admin_view
@require_http_methods(["GET", "POST"])
def remove(request: HttpRequest) -> HttpResponse:
    """GET: the confirmation page (the no-JavaScript path). POST with confirm: remove access."""
    if request.method == "GET":
        ctx = _page_context(request)
        return render(request, "permissions/remove.html", ctx)
    form = RemoveForm(request.POST)
    if not form.is_valid() or not form.cleaned_data["confirm"]:
        ctx = _page_context(request)
        return render(request, "permissions/remove.html", ctx, status=400)
    try:
        provider_access_remove(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            expected_version=form.cleaned_data["version"],
            ip_address=client_ip(request),
        )
    except StaleEdit as exc:
        if not (exc.current and exc.current.removed):
            return _conflict(request, exc)
        # Already removed (a double submit): the outcome the admin asked for.
    return _done(
        request,
        "Service provider access removed. Our experts' monitoring and response have stopped.",
        "#provider-access",
    )


@tenant_admin_view
@require_POST
def restore(request: HttpRequest) -> HttpResponse:
    form = LevelsForm(request.POST)
    if not form.is_valid():
        return _render(request, status=400, levels_form=form)
    data = form.cleaned_data
    try:
        state = provider_access_restore(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            expected_version=data["version"],
            investigate=data["investigate"],
            respond=data["respond"],
            recently_authenticated=recently_authenticated(request),
            ends_at=form.ends_at,
            ip_address=client_ip(request),
        )
    except StaleEdit as exc:
        return _conflict(request, exc)
    except ReauthenticationRequired:
        return _reauth(request, _choice_params(form, "restore"), "#access-levels")
    except PermissionsError as exc:
        # Shown at the top: the form it came from may not be on the page any more
        # (an ended grant, access removed meanwhile).
        return _render(request, status=400, notice=("error", exc.message), levels_form=form)
    return _done(request, f"Service provider access restored to {state.provider_name}.")
