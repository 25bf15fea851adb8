from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from core.errors import ApplicationError
from core.pages import on_error, render_page
from outbox.models import MessageStatus, OutboxMessage
from outbox.selectors import outbox_messages_for_provider
from outbox.services import outbox_message_retry
from tenancy.access import ProviderRequest, provider_page
from tenancy.bounds import parse_int


def _message_or_404(request: ProviderRequest, message_id: int) -> OutboxMessage:
    try:
        return outbox_messages_for_provider(organization=request.provider_staff.organization).get(pk=message_id)
    except OutboxMessage.DoesNotExist:
        raise Http404 from None


@provider_page
def outbox_list(request: ProviderRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    qs = outbox_messages_for_provider(organization=request.provider_staff.organization, status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render_page(
        request,
        "outbox/list.html",
        {"page": page, "status": status, "statuses": MessageStatus.choices, "nav": "outbox"},
    )


@provider_page
def outbox_detail(request: ProviderRequest, message_id: int) -> HttpResponse:
    return _detail(request, _message_or_404(request, message_id))


@provider_page
def outbox_html_preview(request: ProviderRequest, message_id: int) -> HttpResponse:
    """The message's HTML part, sandboxed by CSP so its markup can't run script."""
    message = _message_or_404(request, message_id)
    response = HttpResponse(message.html_body or "<p>(no HTML part)</p>")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    return response


def _detail(
    request: ProviderRequest, message: OutboxMessage, *, conflict: ApplicationError | None = None
) -> HttpResponse:
    return render_page(
        request,
        "outbox/detail.html",
        {"message": message, "attempts": list(message.attempt_log.all()), "nav": "outbox", "conflict": conflict},
    )


@provider_page
@require_POST
def outbox_retry(request: ProviderRequest, message_id: int) -> HttpResponse:
    message = _message_or_404(request, message_id)
    # A stale retry: 409, the message as it is now (its latest error), ready to retry again.
    on_error(request, lambda error: _detail(request, _message_or_404(request, message_id), conflict=error))
    retried = outbox_message_retry(
        message_id=message.pk,
        acting_user=request.user,
        expected_attempts=parse_int(request.POST.get("attempts"), minimum=0),
    )
    if retried:
        messages.success(request, "The message will be retried.")
    else:
        messages.info(request, "Nothing changed: the message isn't failed any more (it was retried or sent).")
    return redirect("outbox:detail", message_id=message.pk)
