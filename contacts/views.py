"""Settings > Defender Experts > Notification contacts.

Views only translate HTTP into selector and service calls, on the web core
(``tenant_page``, ``on_error``, ``render_page``): a service's refusal becomes
its response in ``core.middleware``, shown on this page with the admin's own
input kept. Every htmx interaction has a plain-form equivalent: the search
form is a GET form, the remove form falls back to a confirmation page,
reorder and phone edits are plain POST forms that redirect back
(post/redirect/get); with htmx they re-render the contacts board in place.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts.exceptions import InvalidPhone, LastIncidentContact, StaleContact
from contacts.forms import AddContactForm
from contacts.models import NOTIFICATION_TYPE_HELP, NotificationContact, NotificationType
from contacts.phones import phone_display
from contacts.selectors import (
    PickerState,
    contact_removal_check,
    contacts_page,
    directory_search,
)
from contacts.services import (
    TEST_NOTIFICATION_LIMIT,
    contact_add,
    contact_added_message,
    contact_move,
    contact_remove,
    contact_retry_email,
    contact_send_test,
    contact_set_phone,
    type_with_article,
)
from core.errors import ApplicationError, Conflict, NeedsConfirmation
from core.pages import is_htmx, on_error, render_page, require_valid
from tenancy.access import TenantRequest, get_tenant_object_or_404, tenant_page
from tenancy.bounds import parse_int

TEMPLATE = "contacts/index.html"
SEARCH_TEMPLATE = "contacts/search.html"
CONFIRM_TEMPLATE = "contacts/remove_confirm.html"

# A change form without a readable version can't be checked for staleness,
# so it is refused rather than applied blindly.
OUT_OF_DATE_FORM = "This form was out of date, so nothing was changed. The current contacts are shown; try again."


def safe_next(request: TenantRequest) -> str:
    """A same-site relative path from ``next`` (POST or GET), or ""."""
    target = (request.POST.get("next") or request.GET.get("next") or "").strip()
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return ""
    return target


def _notification_type_param(request: TenantRequest) -> str:
    value = request.POST.get("notification_type") or request.GET.get("notification_type") or ""
    return value if value in NotificationType.values else ""


def notification_types() -> list[dict[str, str]]:
    return [
        {
            "value": t.value,
            "label": t.label,
            "help": NOTIFICATION_TYPE_HELP[t.value],
            "with_article": type_with_article(t.value),
        }
        for t in NotificationType
    ]


def _page(
    request: TenantRequest,
    error: ApplicationError | None = None,
    *,
    picker: PickerState | None = None,
    phone_edit: tuple[int, str] | None = None,
    notice: str = "",
) -> HttpResponse:
    """The page (htmx: its board), with the outcome of what the admin just did.

    ``picker`` is the Add form as submitted; ``phone_edit`` the contact whose
    phone field keeps the number as typed. An error raised by a board action
    shows once, in the board's notice (or next to the phone field it is about).
    """
    page = contacts_page(tenant=request.tenant)
    notice_error = ""
    sections = page.sections
    if phone_edit is not None:
        pk, typed = phone_edit
        field_error = error.message if isinstance(error, InvalidPhone) else ""
        sections = [
            replace(
                s,
                rows=[
                    replace(r, phone_value=typed, phone_error=field_error) if r.contact.pk == pk else r for r in s.rows
                ],
            )
            for s in sections
        ]
        if isinstance(error, Conflict):
            current = next((r.contact.phone for s in page.sections for r in s.rows if r.contact.pk == pk), "")
            notice_error = f"{error.message} Current phone number: {phone_display(current) or 'no phone number'}."
    if error is not None and not notice_error and not (isinstance(error, InvalidPhone) and phone_edit):
        notice_error = error.message
    ctx: dict[str, Any] = {
        "nav": "contacts",
        "page": page,
        "sections": sections,
        "types": notification_types(),
        "picker": picker or PickerState(),
        "picker_next": reverse("contacts:index"),
        "q": picker.q if picker else "",
        "results": directory_search(tenant=request.tenant, query=picker.q) if picker and picker.q else None,
        "selected_type": picker.notification_type if picker else "",
        "test_limit": TEST_NOTIFICATION_LIMIT,
        "notice": notice,
        "notice_error": notice_error,
    }
    return render_page(request, TEMPLATE, ctx, partial="board")


def _done(request: TenantRequest, text: str) -> HttpResponse:
    """htmx: the board re-rendered in place with the outcome; a plain form: back to the page."""
    if is_htmx(request):
        return _page(request, notice=text)
    messages.success(request, text)
    return HttpResponseRedirect(reverse("contacts:index"))


@tenant_page
@require_GET
def index(request: TenantRequest) -> HttpResponse:
    # ?notification_type= preselects the Add form's type (the link after a refused removal).
    return _page(request, picker=PickerState(notification_type=_notification_type_param(request)))


@tenant_page
@require_GET
def search(request: TenantRequest) -> HttpResponse:
    """Directory typeahead. htmx gets the results partial; a plain GET gets a full page."""
    q = (request.GET.get("q") or "")[:200]
    context = {
        "q": q,
        "results": directory_search(tenant=request.tenant, query=q),
        "notification_type": _notification_type_param(request) if request.GET.get("fixed") else "",
        "selected_type": _notification_type_param(request),
        "next": safe_next(request) or reverse("contacts:index"),
        "types": notification_types(),
        "picker": PickerState(q=q, notification_type=_notification_type_param(request)),
    }
    if is_htmx(request):
        return render_page(request, "contacts/_picker.html#results", context)
    return render_page(request, SEARCH_TEMPLATE, {"nav": "contacts", **context})


def _add_refused(request: TenantRequest, form: AddContactForm, error: ApplicationError) -> HttpResponse:
    picker = form.picker(tenant=request.tenant, error=error)
    next_url = safe_next(request)
    if next_url and next_url.split("?")[0].split("#")[0] != reverse("contacts:index"):
        # From the plain search page (a browser without JavaScript): that page again, the choice kept.
        context = {
            "nav": "contacts",
            "q": picker.q,
            "results": directory_search(tenant=request.tenant, query=picker.q) if picker.q else [],
            "notification_type": picker.notification_type if request.POST.get("fixed") else "",
            "selected_type": picker.notification_type,
            "next": next_url,
            "types": notification_types(),
            "picker": picker,
        }
        return render_page(request, SEARCH_TEMPLATE, context)
    return _page(request, picker=picker)


@tenant_page(manage=True)
@require_POST
def add(request: TenantRequest) -> HttpResponse:
    form = AddContactForm(request.POST)
    on_error(request, lambda error: _add_refused(request, form, error))
    require_valid(form)
    user_id, group_id = form.entry_ids()
    contact = contact_add(
        tenant=request.tenant,
        acting_user=request.user,
        notification_type=form.cleaned_data["notification_type"],
        directory_user_id=user_id,
        directory_group_id=group_id,
        phone=form.cleaned_data["phone"],
    )
    messages.success(request, contact_added_message(contact))
    return HttpResponseRedirect(safe_next(request) or reverse("contacts:index"))


def _contact(request: TenantRequest, pk: int) -> NotificationContact:
    return get_tenant_object_or_404(request, NotificationContact, pk=pk)


def _version(request: TenantRequest) -> int:
    version = parse_int(request.POST.get("version", ""))
    if version is None:
        raise StaleContact(OUT_OF_DATE_FORM)
    return version


def _confirm_page(
    request: TenantRequest, contact: NotificationContact, version: str | int, error: ApplicationError | None = None
) -> HttpResponse:
    """Asks before removing, naming the consequence; or says why the removal is refused."""
    check = contact_removal_check(tenant=request.tenant, contact=contact)
    ctx = {"nav": "contacts", "contact": contact, "version": version, "check": check, "error": error}
    return render_page(request, CONFIRM_TEMPLATE, ctx)


def _remove_refused(
    request: TenantRequest, contact: NotificationContact, version: str, error: ApplicationError
) -> HttpResponse:
    if isinstance(error, NeedsConfirmation | LastIncidentContact):
        # Judged again now: the page shows the rule as it stands (a confirmation, or the refusal).
        contact.refresh_from_db()
        return _confirm_page(request, contact, version, error)
    return _page(request, error)


@tenant_page(manage=True)
@require_http_methods(["GET", "POST"])
def remove(request: TenantRequest, pk: int) -> HttpResponse:
    """GET (or a POST without ``confirm``) asks first; POST with ``confirm`` removes."""
    contact = _contact(request, pk)
    if contact.removed_at is not None and request.method == "GET":
        messages.info(request, f"{contact.display_name} was already removed.")
        return HttpResponseRedirect(reverse("contacts:index"))
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return _confirm_page(request, contact, request.POST.get("version") or contact.version)
    on_error(request, lambda error: _remove_refused(request, contact, request.POST.get("version", ""), error))
    contact_remove(
        tenant=request.tenant,
        acting_user=request.user,
        contact=contact,
        expected_version=_version(request),
        confirm_last=request.POST.get("confirm_last") == "yes",
    )
    return _done(request, f"{contact.display_name} was removed as {type_with_article(contact.notification_type)}.")


@tenant_page(manage=True)
@require_POST
def move(request: TenantRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    on_error(request, lambda error: _page(request, error))
    moved = contact_move(
        tenant=request.tenant,
        acting_user=request.user,
        contact=contact,
        direction=request.POST.get("direction", ""),
        expected_version=_version(request),
        expected_neighbour_id=request.POST.get("neighbour"),
    )
    place = "the primary contact" if moved.position == 1 else f"backup {moved.position - 1}"
    return _done(request, f"{moved.display_name} is now {place}.")


@tenant_page(manage=True)
@require_POST
def phone(request: TenantRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    raw = request.POST.get("phone", "")[:64]
    # The number as typed stays in its field: after a refusal, and after a
    # conflict (saving it again then applies it knowingly).
    on_error(request, lambda error: _page(request, error, phone_edit=(contact.pk, raw)))
    updated = contact_set_phone(
        tenant=request.tenant, acting_user=request.user, contact=contact, phone=raw, expected_version=_version(request)
    )
    if updated.phone:
        return _done(request, f"Phone number for {updated.display_name} saved.")
    return _done(request, f"Phone number for {updated.display_name} removed.")


@tenant_page(manage=True)
@require_POST
def send_test(request: TenantRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    on_error(request, lambda error: _page(request, error))
    message = contact_send_test(tenant=request.tenant, acting_user=request.user, contact=contact)
    return _done(request, f"A test notification is on its way to {', '.join(message.to)}.")


@tenant_page(manage=True)
@require_POST
def retry_email(request: TenantRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    on_error(request, lambda error: _page(request, error))
    contact_retry_email(tenant=request.tenant, acting_user=request.user, contact=contact)
    return _done(request, f"The email to {contact.display_name} will be sent again shortly.")
