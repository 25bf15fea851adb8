"""Settings > Defender Experts > Notification contacts.

Views only translate HTTP into selector and service calls. Every htmx
interaction has a plain-form equivalent: the search form is a GET form, the
remove form falls back to a confirmation page, reorder and phone edits are
plain POST forms that redirect back (post/redirect/get).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts.exceptions import ContactError, InvalidPhone, StaleContact
from contacts.models import NOTIFICATION_TYPE_HELP, NotificationContact, NotificationType
from contacts.selectors import (
    contact_history,
    contacts_by_type,
    directory_search,
)
from contacts.services import (
    TEST_NOTIFICATION_LIMIT,
    contact_add,
    contact_move,
    contact_remove,
    contact_retry_email,
    contact_send_test,
    contact_set_phone,
    phone_display,
    type_with_article,
)
from tenancy.access import get_tenant_object_or_404, tenant_admin_view, tenant_view
from tenancy.bounds import parse_int


def safe_next(request: HttpRequest) -> str:
    """A same-site relative path from ``next`` (POST or GET), or ""."""
    target = (request.POST.get("next") or request.GET.get("next") or "").strip()
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return ""
    return target


def _notification_type_param(request: HttpRequest) -> str:
    value = request.POST.get("notification_type") or request.GET.get("notification_type") or ""
    return value if value in NotificationType.values else ""


def _types() -> list[dict[str, str]]:
    return [
        {
            "value": t.value,
            "label": t.label,
            "help": NOTIFICATION_TYPE_HELP[t.value],
            "with_article": type_with_article(t.value),
        }
        for t in NotificationType
    ]


def _page_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    """Everything the page shows, in a fixed number of queries whatever the data size:
    contacts with their directory rows and welcome emails (1), team member
    previews (1, only when a team is listed) and the recent history (1)."""
    tenant = request.tenant  # type: ignore[attr-defined]
    grouped = contacts_by_type(tenant=tenant)
    incident = grouped[NotificationType.INCIDENT.value]
    sections = [
        {"type": t, "contacts": grouped[t["value"]], "is_incident": t["value"] == NotificationType.INCIDENT.value}
        for t in _types()
    ]
    flagged = [c for contacts in grouped.values() for c in contacts if not c.can_receive]
    phone_errors: dict[int, str] = extra.pop("phone_errors", {})
    phone_values: dict[int, str] = extra.pop("phone_values", {})
    for contacts in grouped.values():
        # Neighbours for the move buttons: the form says which contact the
        # admin saw above/below, so a stale move is detected, never misapplied.
        for i, c in enumerate(contacts):
            c.prev_id = contacts[i - 1].pk if i > 0 else ""  # type: ignore[attr-defined]
            c.next_id = contacts[i + 1].pk if i + 1 < len(contacts) else ""  # type: ignore[attr-defined]
            c.phone_error = phone_errors.get(c.pk, "")  # type: ignore[attr-defined]
            c.phone_value = phone_values.get(c.pk, phone_display(c.phone))  # type: ignore[attr-defined]
            c.phone_display = phone_display(c.phone)  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "nav": "contacts",
        "sections": sections,
        "types": _types(),
        "no_incident_contact": not incident,
        # Contacts stay listed when their directory entry goes away; if that
        # leaves nobody reachable, say so as plainly as having nobody at all.
        "no_reachable_incident_contact": bool(incident) and not any(c.can_receive for c in incident),
        "no_incident_phone": bool(incident) and not any(c.phone for c in incident),
        "flagged_contacts": flagged,
        "history": contact_history(tenant=tenant),
        "picker_next": reverse("contacts:index"),
        "q": "",
        "results": None,
        "test_limit": TEST_NOTIFICATION_LIMIT,
    }
    context.update(extra)
    return context


@require_GET
@tenant_view
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "contacts/index.html", _page_context(request))


@require_GET
@tenant_view
def search(request: HttpRequest) -> HttpResponse:
    """Directory typeahead. htmx gets the results partial; a plain GET gets a full page."""
    q = (request.GET.get("q") or "")[:200]
    context = {
        "q": q,
        "results": directory_search(tenant=request.tenant, query=q),  # type: ignore[attr-defined]
        "notification_type": _notification_type_param(request) if request.GET.get("fixed") else "",
        "selected_type": _notification_type_param(request),
        "next": safe_next(request) or reverse("contacts:index"),
        "types": _types(),
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "contacts/_picker.html#results", context)
    return render(request, "contacts/search.html", {"nav": "contacts", **context})


def _entry_ids(request: HttpRequest) -> tuple[str | None, str | None]:
    entry = request.POST.get("entry") or ""
    kind, _, pk = entry.partition(":")
    if kind == "user" and pk:
        return pk, None
    if kind == "group" and pk:
        return None, pk
    return request.POST.get("directory_user_id") or None, request.POST.get("directory_group_id") or None


@require_POST
@tenant_admin_view
def add(request: HttpRequest) -> HttpResponse:
    notification_type = request.POST.get("notification_type", "")
    user_id, group_id = _entry_ids(request)
    next_url = safe_next(request)
    try:
        contact = contact_add(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            notification_type=notification_type,
            directory_user_id=user_id,
            directory_group_id=group_id,
            phone=request.POST.get("phone", ""),
        )
    except ContactError as exc:
        if next_url and next_url.split("?")[0] != reverse("contacts:index"):
            messages.error(request, exc.message)
            return redirect(next_url)
        # On this page the form re-renders with the error, keeping the search.
        q = request.POST.get("q", "")[:200]
        context = _page_context(
            request,
            picker_error=exc.message,
            q=q,
            results=directory_search(tenant=request.tenant, query=q) if q else None,  # type: ignore[attr-defined]
            selected_type=notification_type,
            picker_phone=request.POST.get("phone", ""),
        )
        return render(request, "contacts/index.html", context, status=422)
    # The email is queued in the outbox (sent right after), so say it's on its way, not sent.
    messages.success(
        request,
        f"{contact.display_name} was added as {type_with_article(contact.notification_type)}. "
        f"An email letting them know is on its way to {contact.email}.",
    )
    return redirect(next_url or "contacts:index")


def _contact(request: HttpRequest, pk: int) -> NotificationContact:
    return get_tenant_object_or_404(request, NotificationContact, pk=pk)


# A change form without a readable version can't be checked for staleness,
# so it is refused rather than applied blindly.
OUT_OF_DATE_FORM = "This form was out of date, so nothing was changed. The current contacts are shown; try again."


def _version(request: HttpRequest) -> int | None:
    return parse_int(request.POST.get("version", ""))


@require_http_methods(["GET", "POST"])
@tenant_admin_view
def remove(request: HttpRequest, pk: int) -> HttpResponse:
    """GET (or a POST without ``confirm``) asks first; POST with ``confirm`` removes."""
    contact = _contact(request, pk)
    if contact.removed_at is not None and request.method == "GET":
        messages.info(request, f"{contact.display_name} was already removed.")
        return redirect("contacts:index")
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return render(
            request,
            "contacts/remove_confirm.html",
            {"nav": "contacts", "contact": contact, "version": request.POST.get("version") or contact.version},
        )
    version = _version(request)
    if version is None:
        return _after_change(request, error=OUT_OF_DATE_FORM)
    try:
        contact_remove(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            contact=contact,
            expected_version=version,
        )
    except StaleContact as exc:
        return _conflict(request, exc)
    except ContactError as exc:
        return _after_change(request, error=exc.message)
    return _after_change(
        request,
        success=f"{contact.display_name} was removed as {type_with_article(contact.notification_type)}.",
    )


def _conflict(request: HttpRequest, error: StaleContact, **extra: Any) -> HttpResponse:
    """409: someone else changed the list meanwhile; the board as it is now, with the admin's own input kept."""
    context = _page_context(request, notice_error=error.message, **extra)
    template = "contacts/index.html#board" if request.htmx else "contacts/index.html"  # type: ignore[attr-defined]
    return render(request, template, context, status=409)


def _after_change(request: HttpRequest, *, success: str = "", error: str = "") -> HttpResponse:
    """htmx: re-render the contacts board in place; plain forms: redirect back."""
    if request.htmx:  # type: ignore[attr-defined]
        context = _page_context(request, notice=success, notice_error=error)
        return render(request, "contacts/index.html#board", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, success)
    return redirect("contacts:index")


@require_POST
@tenant_admin_view
def move(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    version = _version(request)
    if version is None:
        return _after_change(request, error=OUT_OF_DATE_FORM)
    try:
        moved = contact_move(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            contact=contact,
            direction=request.POST.get("direction", ""),
            expected_version=version,
            expected_neighbour_id=request.POST.get("neighbour"),
        )
    except StaleContact as exc:
        return _conflict(request, exc)
    except ContactError as exc:
        return _after_change(request, error=exc.message)
    place = "the primary contact" if moved.position == 1 else f"backup {moved.position - 1}"
    return _after_change(request, success=f"{moved.display_name} is now {place}.")


@require_POST
@tenant_admin_view
def phone(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    raw = request.POST.get("phone", "")
    version = _version(request)
    if version is None:
        return _after_change(request, error=OUT_OF_DATE_FORM)
    try:
        updated = contact_set_phone(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            contact=contact,
            phone=raw,
            expected_version=version,
        )
    except InvalidPhone as exc:
        # Re-render with the number as typed, so nothing is lost.
        context = _page_context(request, phone_errors={contact.pk: exc.message}, phone_values={contact.pk: raw})
        return render(request, "contacts/index.html", context, status=422)
    except StaleContact as exc:
        current = NotificationContact.objects.filter(pk=contact.pk).values_list("phone", flat=True).first() or ""
        shown = current or "no phone number"
        exc.message = f"{exc.message} Current phone number: {shown}."
        # The number the admin typed stays in the field; saving it again applies it knowingly.
        return _conflict(request, exc, phone_values={contact.pk: raw})
    except ContactError as exc:
        return _after_change(request, error=exc.message)
    if updated.phone:
        return _after_change(request, success=f"Phone number for {updated.display_name} saved.")
    return _after_change(request, success=f"Phone number for {updated.display_name} removed.")


@require_POST
@tenant_admin_view
def send_test(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    try:
        message = contact_send_test(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            contact=contact,
        )
    except ContactError as exc:
        return _after_change(request, error=exc.message)
    return _after_change(request, success=f"A test notification is on its way to {', '.join(message.to)}.")


@require_POST
@tenant_admin_view
def retry_email(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _contact(request, pk)
    try:
        contact_retry_email(
            tenant=request.tenant,  # type: ignore[attr-defined]
            acting_user=request.user,  # type: ignore[arg-type]
            contact=contact,
        )
    except ContactError as exc:
        return _after_change(request, error=exc.message)
    return _after_change(request, success=f"The email to {contact.display_name} will be sent again shortly.")
