"""Settings > Defender Experts > Exclusions: the device groups and user groups the experts only advise on.

Two tabs, **Device groups** and **User groups**. **+ Add device groups** / **+ Add user groups** open a
search over the tenant's existing groups with multi-select (a drawer; without script, a page of its
own); **Remove device group** / **Remove user group** asks first (a dialog, or a page). The optional
exclusion of every high-value asset asks first too. The Get started guide's Exclusions step posts to
these same views with ``in_guide`` and its own ``next``.

Any member may look (``manage="writes"``: a viewer's write is a 403); another tenant's or a malformed
id is a 404; a stale form is a 409 keeping the admin's choice.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import ApplicationError, Conflict, NeedsConfirmation
from core.pages import is_htmx, on_error, render_page, require_valid, with_values
from exclusions.exceptions import (
    DEVICE_GROUPS_NOTE,
    HIGH_VALUE_WARNING,
    USER_GROUPS_NOTE,
    USERS_ONLY_THROUGH_GROUPS_NOTE,
)
from exclusions.forms import AddGroupsForm, HighValueForm, RemoveForm
from exclusions.models import ExcludedDeviceGroup, ExcludedUserGroup
from exclusions.selectors import (
    OPTIONS_LIMIT,
    GroupOption,
    device_group_options,
    exclusion_state,
    exclusion_version,
    tenant_device_group_ids,
    tenant_security_group_ids,
    user_group_options,
)
from exclusions.services import (
    exclusion_device_group_remove,
    exclusion_device_groups_add,
    exclusion_high_value_set,
    exclusion_user_group_remove,
    exclusion_user_groups_add,
)
from tenancy.access import TenantRequest, get_tenant_object_or_404, tenant_page
from tenancy.bounds import parse_id

DEVICE_GROUPS = "device-groups"
USER_GROUPS = "user-groups"
KINDS = {DEVICE_GROUPS: ("device group", "device groups"), USER_GROUPS: ("user group", "user groups")}


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise Http404
    return kind


def _back(form: AddGroupsForm | RemoveForm | HighValueForm | None, kind: str = DEVICE_GROUPS) -> str:
    """Where the admin goes after a change: the guide's step they came from, or this page's tab."""
    nxt = form.cleaned_data.get("next") if form is not None and form.is_valid() else ""
    if nxt:
        return str(nxt)
    return f"{reverse('exclusions:index')}?{urlencode({'tab': kind})}"


def manage_context(request: TenantRequest, *, tab: str, next_url: str = "", in_guide: bool = False) -> dict[str, Any]:
    """What ``templates/exclusions/_manage.html`` needs, here and in the Get started guide's step."""
    state = exclusion_state(tenant=request.tenant)
    return {
        "exclusions": state,
        "tab": tab if tab in KINDS else DEVICE_GROUPS,
        "next_url": next_url,
        "in_guide": in_guide,
        "device_groups_note": DEVICE_GROUPS_NOTE,
        "user_groups_note": USER_GROUPS_NOTE,
        "users_note": USERS_ONLY_THROUGH_GROUPS_NOTE,
        "high_value_warning": HIGH_VALUE_WARNING,
        "high_value_form": HighValueForm(
            initial={
                "exclude_high_value": state.exclude_high_value,
                "version": state.version,
                "next": next_url,
                "in_guide": in_guide,
            }
        ),
    }


def _page(request: TenantRequest, error: ApplicationError | None = None, **overrides: Any) -> HttpResponse:
    ctx = manage_context(request, tab=request.GET.get("tab") or request.POST.get("tab") or DEVICE_GROUPS)
    ctx["nav"] = "exclusions"
    if isinstance(error, NeedsConfirmation):
        ctx["confirm_high_value"] = error
    elif error is not None:
        ctx["notice"] = ("warning" if isinstance(error, Conflict) else "error", error.message)
    form = overrides.get("high_value_form")
    if isinstance(error, Conflict) and isinstance(form, HighValueForm):
        with_values(form, version=ctx["exclusions"].version)
    ctx.update(overrides)
    return render_page(request, "exclusions/index.html", ctx)


@tenant_page
@require_GET
def index(request: TenantRequest) -> HttpResponse:
    return _page(request)


def _options(request: TenantRequest, kind: str, q: str) -> list[GroupOption]:
    if kind == DEVICE_GROUPS:
        return device_group_options(tenant=request.tenant, q=q)
    return user_group_options(tenant=request.tenant, q=q)


def _add_page(
    request: TenantRequest, kind: str, form: AddGroupsForm, error: ApplicationError | None = None
) -> HttpResponse:
    q = (request.GET.get("q") or request.POST.get("q") or "").strip()[:100]
    options = _options(request, kind, q)
    chosen = {parse_id(v) for v in request.POST.getlist("group")}
    ctx = {
        "nav": "exclusions",
        "kind": kind,
        "singular": KINDS[kind][0],
        "plural": KINDS[kind][1],
        "q": q,
        "options": options,
        "more": len(options) >= OPTIONS_LIMIT,
        "chosen": chosen,
        "form": form,
        "error": error,
        "note": DEVICE_GROUPS_NOTE if kind == DEVICE_GROUPS else USER_GROUPS_NOTE,
        "users_note": USERS_ONLY_THROUGH_GROUPS_NOTE,
        "back_url": _back(form if form.is_bound else None, kind),
    }
    # htmx asks for the list alone while the admin types in the search box.
    partial = "options" if request.method == "GET" and request.GET.get("q") is not None else None
    return render_page(request, "exclusions/add.html", ctx, partial=partial)


def _group_ids(request: TenantRequest, kind: str) -> list[int]:
    """The ticked groups; a malformed id or another tenant's group is a 404."""
    ids: set[int] = set()
    for raw in request.POST.getlist("group"):
        pk = parse_id(raw)
        if pk is None:
            raise Http404
        ids.add(pk)
    found = (
        tenant_device_group_ids(tenant=request.tenant, ids=ids)
        if kind == DEVICE_GROUPS
        else tenant_security_group_ids(tenant=request.tenant, ids=ids, security_only=False)
    )
    if found != ids:
        raise Http404
    return sorted(ids)


@tenant_page(manage="writes")
@require_http_methods(["GET", "POST"])
def add(request: TenantRequest, kind: str) -> HttpResponse:
    kind = _kind(kind)
    if request.method == "GET":
        initial = {
            "version": exclusion_version(tenant=request.tenant),
            "next": request.GET.get("next", ""),
            "in_guide": request.GET.get("in_guide") == "1",
        }
        return _add_page(request, kind, AddGroupsForm(initial=initial))
    form = AddGroupsForm(request.POST)
    on_error(request, lambda error: _add_page(request, kind, _kept(form, error), error))
    require_valid(form)
    ids = _group_ids(request, kind)
    args = {
        "tenant": request.tenant,
        "acting_user": request.user,
        "expected_version": form.cleaned_data["version"],
        "in_guide": form.cleaned_data["in_guide"],
    }
    if kind == DEVICE_GROUPS:
        n = exclusion_device_groups_add(device_group_ids=ids, **args)
    else:
        n = exclusion_user_groups_add(directory_group_ids=ids, **args)
    singular, plural = KINDS[kind]
    messages.success(
        request,
        f"Excluded {n} {singular if n == 1 else plural} from remediation."
        if n
        else f"Those {plural} were already excluded.",
    )
    return HttpResponseRedirect(_back(form, kind))


def _kept(form: AddGroupsForm | RemoveForm | HighValueForm, error: ApplicationError) -> Any:
    """After a conflict the form keeps the admin's choice, now against the current version."""
    if isinstance(error, Conflict) and "current_version" in error.extra:
        with_values(form, version=error.extra["current_version"])
    return form


@tenant_page(manage="writes")
@require_http_methods(["GET", "POST"])
def remove(request: TenantRequest, kind: str, pk: str) -> HttpResponse:
    kind = _kind(kind)
    row: ExcludedDeviceGroup | ExcludedUserGroup
    if kind == DEVICE_GROUPS:
        row = get_tenant_object_or_404(request, ExcludedDeviceGroup.objects.select_related("device_group"), pk=pk)
        name = row.device_group.name
    else:
        row = get_tenant_object_or_404(request, ExcludedUserGroup.objects.select_related("directory_group"), pk=pk)
        name = row.directory_group.display_name
    params = request.POST if request.method == "POST" else request.GET
    form = (
        RemoveForm(request.POST)
        if request.method == "POST"
        else RemoveForm(
            initial={
                "version": exclusion_version(tenant=request.tenant),
                "next": params.get("next", ""),
                "confirm": True,
            }
        )
    )

    def page(error: ApplicationError | None = None) -> HttpResponse:
        ctx = {
            "nav": "exclusions",
            "kind": kind,
            "singular": KINDS[kind][0],
            "row": row,
            "name": name,
            "form": _kept(form, error) if error is not None else form,
            "error": error,
            "back_url": _back(form if form.is_bound else None, kind),
        }
        return render_page(request, "exclusions/remove.html", ctx)

    if request.method == "GET":
        return page()
    on_error(request, page)
    require_valid(form)
    if not form.cleaned_data["confirm"]:
        return page()
    if isinstance(row, ExcludedDeviceGroup):
        exclusion_device_group_remove(
            tenant=request.tenant, acting_user=request.user, excluded=row, expected_version=form.cleaned_data["version"]
        )
    else:
        exclusion_user_group_remove(
            tenant=request.tenant, acting_user=request.user, excluded=row, expected_version=form.cleaned_data["version"]
        )
    messages.success(request, f"{name} was removed from the exclusion list.")
    return HttpResponseRedirect(_back(form, kind))


@tenant_page(manage="writes")
@require_POST
def high_value(request: TenantRequest) -> HttpResponse:
    form = HighValueForm(request.POST)
    on_error(request, lambda error: _page(request, error, high_value_form=_kept(form, error)))
    require_valid(form)
    on = form.cleaned_data["exclude_high_value"]
    changed = exclusion_high_value_set(
        tenant=request.tenant,
        acting_user=request.user,
        enabled=on,
        expected_version=form.cleaned_data["version"],
        confirm=form.cleaned_data["confirm"],
    )
    text = (
        "All high-value devices and users are excluded from remediation, including those tagged later."
        if on
        else "High-value devices and users are no longer excluded as such."
    )
    messages.success(request, text if changed else "Nothing changed.")
    if is_htmx(request):
        return _page(request)
    return HttpResponseRedirect(_back(form) + "#high-value")
