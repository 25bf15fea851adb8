"""Settings > Defender Experts > Permissions: the worked example of the web core.

How a page uses the core (``core``, ``tenancy.access``):

* ``@tenant_page`` (any member may look) or ``@tenant_page(manage=True)``
  (a viewer gets 403) resolves the request into a ``TenantRequest``:
  ``request.tenant``, ``request.membership`` and ``request.user`` are typed.
* Reads come from one selector (``permissions_page``); the view only builds
  the forms and calls ``render_page``, which answers htmx with the page's
  ``content`` partial and a plain request with the whole page.
* A POST builds its form, says with ``on_error`` how the page shows an error
  (the form as submitted, plus the error), checks the form with
  ``require_valid`` and calls the service. Whatever the service refuses with
  (``StaleEdit`` is a ``Conflict``: 409; a confirmation: 200; a password
  prompt: 302; anything else ``Invalid``: 400) becomes its response in
  ``core.middleware``; the views have no ``except`` clauses.
* The client IP reaches the audit trail through the request context.

Every POST works as a plain form (post/redirect/get) and, with htmx, swaps
the page's ``content`` partial in place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import ApplicationError, Conflict, InvalidForm, NeedsConfirmation
from core.pages import is_htmx, on_error, render_page, require_valid, with_values
from permissions.exceptions import ALL_DEVICES_WARNING, LEAST_PRIVILEGE_NOTE, SKIP_PERMISSIONS_WARNING
from permissions.forms import LevelsForm, RemoveForm, RenewForm, prefill
from permissions.models import AccessGrant, AccessState
from permissions.selectors import access_levels_state, permissions_page
from permissions.services import (
    access_grant_renew,
    access_settings_save,
    provider_access_remove,
)
from tenancy.access import TenantRequest, get_tenant_object_or_404, tenant_page
from tenancy.bounds import parse_id
from tenancy.reauth import recently_authenticated

TEMPLATE = "permissions/index.html"


def _page(
    request: TenantRequest,
    error: ApplicationError | None = None,
    *,
    template: str = TEMPLATE,
    confirm_as: str = "",
    **overrides: Any,
) -> HttpResponse:
    """The page; ``overrides`` replace its forms and flags (a form as submitted, a notice)."""
    page = permissions_page(tenant=request.tenant)
    state = page.state
    ctx: dict[str, Any] = {
        "nav": "permissions",
        "state": state,
        "health": page.health,
        "scope": page.scope,
        "effective": page.effective,
        "history": page.history,
        "grants": page.grants,
        "skip_warning": SKIP_PERMISSIONS_WARNING,
        "least_privilege_note": LEAST_PRIVILEGE_NOTE,
        "all_devices_warning": ALL_DEVICES_WARNING,
        "levels_form": LevelsForm(initial=page.initial_levels),
        "levels_action": page.levels_action,
        "can_grant_more": page.can_grant_more,
        "remove_form": RemoveForm(initial={"version": state.version, "confirm": True}),
        "renew_initial": {"version": state.version},
    }
    if isinstance(error, Conflict):
        # The admin's own choices stay on the page, now against the current version.
        for form in overrides.values():
            if isinstance(form, forms.BaseForm) and form.is_bound:
                with_values(form, version=state.version)
                if isinstance(form, LevelsForm):
                    # Saving again now knowingly applies the admin's choices to what the page shows.
                    with_values(form, investigate_was=state.investigate, respond_was=state.respond)
        ctx["conflict"] = error
    elif isinstance(error, NeedsConfirmation):
        ctx[confirm_as] = error
    elif error is not None and not isinstance(error, InvalidForm):
        # Shown at the top: the form it came from may not be on the page any more
        # (an ended grant, access removed meanwhile).
        ctx["notice"] = ("error", error.message)
    ctx.update(overrides)
    # One renew form per live grant, each with its own ids; the one the admin
    # just submitted (or is coming back to after the password prompt) keeps its values.
    rows = []
    for g in ctx["grants"]:
        auto_id = f"renew{g.pk}_%s"
        if ctx.get("renew_grant") == g.pk and "renew_form" in ctx:
            form = ctx["renew_form"]
            if isinstance(error, Conflict):
                # Renewing again now extends from the end date the page shows.
                with_values(form, ends_was=g.ends_at.isoformat())
        elif ctx.get("renew_grant") == g.pk:
            form = RenewForm(initial={"ends_was": g.ends_at.isoformat(), **ctx["renew_initial"]}, auto_id=auto_id)
        else:
            form = RenewForm(initial={"version": state.version, "ends_was": g.ends_at.isoformat()}, auto_id=auto_id)
        rows.append((g, form))
    ctx["grant_rows"] = rows
    # The remove confirmation is a page of its own (the no-JavaScript path), always whole.
    return render_page(request, template, ctx, partial="content" if template == TEMPLATE else None)


def _confirmations(request: TenantRequest, form: LevelsForm, error: ApplicationError) -> dict[str, Any]:
    """Which warnings the Save's confirmation shows: its one ``confirm`` answers every risky part of the form
    (fewer access levels, all devices off), so each of those it would apply is shown, not just the first refused."""
    if not isinstance(error, NeedsConfirmation) or not form.is_valid():
        return {}
    state = access_levels_state(tenant=request.tenant)
    data = form.cleaned_data
    reduced = (state.respond and not data["respond"]) or (
        (state.investigate or state.respond) and not (data["investigate"] or data["respond"])
    )
    devices_off = state.all_devices and form.all_devices_choice is False
    return {
        "confirm_levels": error if reduced or not devices_off else None,
        "confirm_all_devices": error if devices_off else None,
    }


def _done(request: TenantRequest, text: str, anchor: str = "") -> HttpResponse:
    if is_htmx(request):
        return _page(request, notice=("success", text))
    messages.success(request, text)
    return HttpResponseRedirect(reverse("permissions:index") + anchor)


def _back_with(form: forms.BaseForm, kind: str, anchor: str, **more: Any) -> str:
    """Where the password prompt returns to: the page, showing the admin's pending choice (nothing applied yet)."""
    data = form.cleaned_data
    params = {"form": kind, "duration": data.get("duration", ""), "version": data.get("version", ""), **more}
    if data.get("custom_end"):
        params["custom_end"] = data["custom_end"].isoformat()
    if data.get("ends_was"):
        params["ends_was"] = data["ends_was"].isoformat()
    for key in ("investigate", "respond", "all_devices", "all_devices_shown"):
        if key in data:
            params[key] = "1" if data[key] else "0"
    return reverse("permissions:index") + "?" + urlencode({**params, "reauthed": "1"}) + anchor


@tenant_page
@require_GET
def index(request: TenantRequest) -> HttpResponse:
    params = request.GET
    if not (params.get("reauthed") and request.membership.can_manage):
        return _page(request)
    # Back from the password prompt: show the admin's pending choice, ready to save.
    kind = params.get("form")
    switches = ("investigate", "respond", "all_devices", "all_devices_shown")
    values = prefill(params, (*switches, "duration", "custom_end", "version", "ends_was"))
    if kind in {"levels", "restore"}:
        return _page(request, levels_form=LevelsForm(initial=values), pending_save=kind)
    grant_id = parse_id(params.get("grant"))
    if kind == "renew" and grant_id is not None:
        return _page(request, renew_initial=values, renew_grant=grant_id, pending_save="renew")
    return _page(request)


@tenant_page(manage=True)
@require_POST
def levels(request: TenantRequest) -> HttpResponse:
    form = LevelsForm(request.POST)
    on_error(
        request,
        lambda error: _page(request, error, levels_form=form, **_confirmations(request, form, error)),
        reauth_next=lambda: _back_with(form, "levels", "#access-levels"),
    )
    require_valid(form)
    data = form.cleaned_data
    was = access_levels_state(tenant=request.tenant)
    if was.state == AccessState.PENDING and not (data["investigate"] or data["respond"]):
        form.add_error(None, "Turn on at least one access level to grant service provider access.")
        raise InvalidForm(form=form)
    state = access_settings_save(
        tenant=request.tenant,
        acting_user=request.user,
        investigate=data["investigate"],
        respond=data["respond"],
        all_devices=form.all_devices_choice,
        expected_version=data["version"],
        confirm=data["confirm"],
        recently_authenticated=recently_authenticated(request),
        ends_at=form.ends_at,
        levels_as_read=form.levels_as_read,
    )
    if state.version == was.version:
        return _done(request, "Nothing changed: the access levels were already as you chose.", "#access-levels")
    if state.all_devices != was.all_devices and (state.investigate, state.respond) == (was.investigate, was.respond):
        return _done(
            request, f"Access security data from all devices is {'on' if state.all_devices else 'off'}.", "#all-devices"
        )
    if was.state == AccessState.PENDING and state.provider_access_granted:
        return _done(
            request, f"Service provider access granted to {state.provider_name}, with the access levels you chose."
        )
    return _done(request, "Access levels saved.", "#access-levels")


@tenant_page(manage=True)
@require_POST
def renew(request: TenantRequest, grant_id: str) -> HttpResponse:
    grant = get_tenant_object_or_404(request, AccessGrant, pk=grant_id)
    form = RenewForm(request.POST, auto_id=f"renew{grant.pk}_%s", extend_from=grant.ends_at)
    on_error(
        request,
        lambda error: _page(request, error, renew_form=form, renew_grant=grant.pk),
        reauth_next=lambda: _back_with(form, "renew", "#grants", grant=grant.pk),
    )
    require_valid(form)
    ends_at = form.ends_at
    assert ends_at is not None  # noqa: S101 - the form guarantees it when valid
    was = access_levels_state(tenant=request.tenant)
    state = access_grant_renew(
        tenant=request.tenant,
        acting_user=request.user,
        grant_id=grant.pk,
        expected_version=form.cleaned_data["version"],
        ends_at=ends_at,
        recently_authenticated=recently_authenticated(request),
    )
    if state.version == was.version:
        return _done(
            request, f"Nothing changed: {grant.get_level_display()} already ends on {ends_at:%d %b %Y}.", "#grants"
        )
    return _done(request, f"{grant.get_level_display()} renewed until {ends_at:%d %b %Y}.", "#grants")


@tenant_page(manage=True)
@require_http_methods(["GET", "POST"])
def remove(request: TenantRequest) -> HttpResponse:
    """GET: the confirmation page (the no-JavaScript path). POST with confirm: remove access."""
    confirmation = "permissions/remove.html"
    if request.method == "GET":
        return _page(request, template=confirmation)
    form = RemoveForm(request.POST)
    on_error(request, lambda error: _page(request, error, template=confirmation))
    if not form.is_valid() or not form.cleaned_data["confirm"]:
        raise InvalidForm(form=form)
    provider_access_remove(
        tenant=request.tenant, acting_user=request.user, expected_version=form.cleaned_data["version"]
    )
    return _done(
        request,
        "Service provider access removed. Our experts' monitoring and response have stopped.",
        "#provider-access",
    )


@tenant_page(manage=True)
@require_POST
def restore(request: TenantRequest) -> HttpResponse:
    form = LevelsForm(request.POST)
    on_error(
        request,
        lambda error: _page(request, error, levels_form=form, **_confirmations(request, form, error)),
        reauth_next=lambda: _back_with(form, "restore", "#access-levels"),
    )
    require_valid(form)
    data = form.cleaned_data
    was = access_levels_state(tenant=request.tenant)
    state = access_settings_save(
        tenant=request.tenant,
        acting_user=request.user,
        investigate=data["investigate"],
        respond=data["respond"],
        all_devices=form.all_devices_choice,
        expected_version=data["version"],
        confirm=data["confirm"],
        recently_authenticated=recently_authenticated(request),
        ends_at=form.ends_at,
        restore=True,
    )
    if state.version == was.version:
        return _done(
            request, "Nothing changed: service provider access was already restored with the access levels you chose."
        )
    return _done(request, f"Service provider access restored to {state.provider_name}.")
