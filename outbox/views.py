from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from outbox.models import MessageStatus, OutboxMessage
from outbox.selectors import outbox_messages_for_provider
from outbox.services import outbox_retry_now
from tenancy.access import provider_view


def _message_or_404(request: HttpRequest, message_id: int) -> OutboxMessage:
    try:
        return outbox_messages_for_provider(organization=request.provider_staff.organization).get(pk=message_id)  # type: ignore[attr-defined]
    except OutboxMessage.DoesNotExist:
        raise Http404 from None


@provider_view
def outbox_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    qs = outbox_messages_for_provider(organization=request.provider_staff.organization, status=status)  # type: ignore[attr-defined]
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "outbox/list.html",
        {"page": page, "status": status, "statuses": MessageStatus.choices, "nav": "outbox"},
    )


@provider_view
def outbox_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _message_or_404(request, message_id)
    return render(
        request,
        "outbox/detail.html",
        {"message": message, "attempts": list(message.attempt_log.all()), "nav": "outbox"},
    )


@provider_view
def outbox_html_preview(request: HttpRequest, message_id: int) -> HttpResponse:
    """The message's HTML part, sandboxed by CSP so its markup can't run script."""
    message = _message_or_404(request, message_id)
    response = HttpResponse(message.html_body or "<p>(no HTML part)</p>")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    return response


@provider_view
@require_POST
def outbox_retry(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _message_or_404(request, message_id)
    if message.status != MessageStatus.FAILED:
        messages.info(request, "Only a failed message can be retried.")
    else:
        outbox_retry_now(message=message)
        messages.success(request, "The message will be retried.")
    return redirect("outbox:detail", message_id=message.pk)
