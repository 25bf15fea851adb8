"""Rendering pages: the whole page, or the part htmx asked for, and how a
page shows an ``ApplicationError``.

``render_page`` is the only way views render a page. An htmx request gets
``template#partial`` (django-template-partials) so the same URL serves both,
and every response says ``Vary: HX-Request`` so no cache mixes them up. A
history-restore request (htmx re-fetching a page it has no snapshot of)
gets the whole page.

``on_error`` lets a view say how its page shows an error raised below it:
the view hands over a function that re-renders the page, bound forms and
all, so a 400/409 shows the user's own values. The status, the password
prompt and the 403 page are decided in ``error_response``, the one place
errors are mapped; ``WebCoreMiddleware`` calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from core.errors import ApplicationError, InvalidForm, NeedsReauth, NotAllowed
from core.replay import remember_post

ErrorPage = Callable[[ApplicationError], HttpResponse]
F = TypeVar("F", bound=forms.BaseForm)

# Attributes ``on_error`` leaves on the request for ``error_response``.
_ERROR_PAGE = "_core_error_page"
_REAUTH_NEXT = "_core_reauth_next"


def is_htmx(request: HttpRequest) -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    htmx: HtmxDetails | None = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def render_page(
    request: HttpRequest,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page ``template``; for htmx, only its ``partial`` (if the page has one).

    ``partial`` names a ``{% partialdef %}`` of ``template``; a name ending in
    ``.html`` is a template of its own, for a swap that also carries
    out-of-band pieces.
    """
    name = template
    if partial and is_htmx(request):
        name = partial if partial.endswith(".html") else f"{template}#{partial}"
    response = render(request, name, dict(context or {}), status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def redirect_page(request: HttpRequest, url: str) -> HttpResponse:
    """Go to ``url``: a plain redirect, or HX-Redirect so htmx loads the whole page."""
    if getattr(request, "htmx", None):
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


def require_valid(form: forms.BaseForm) -> None:
    """``InvalidForm`` (400, the page re-rendered by ``on_error``) unless ``form`` is valid."""
    if not form.is_valid():
        raise InvalidForm(form=form)


def with_values(form: F, **values: Any) -> F:
    """``form`` as the user submitted it, with ``values`` replaced: after a
    ``Conflict`` the page keeps what the user typed but carries the current
    version, so saving again knowingly applies it."""
    data = QueryDict(mutable=True)
    data.update(form.data)
    for key, value in values.items():
        data[key] = str(value)
    # A new form on the new data (validated afresh), with the original's prefix and settings.
    form.data = data
    form.full_clean()
    return form


def on_error(request: HttpRequest, page: ErrorPage, *, reauth_next: str | Callable[[], str] | None = None) -> None:
    """How this request's page shows an ``ApplicationError`` raised from here on.

    ``page(error)`` re-renders the page with the user's submitted values and
    the error (``error.message``; ``error.extra`` for details); the status is
    set for it. ``reauth_next`` (or a function giving it, called only if
    needed) is where the password prompt returns to (default: the page itself
    for a GET).
    """
    setattr(request, _ERROR_PAGE, page)
    if reauth_next is not None:
        setattr(request, _REAUTH_NEXT, reauth_next)


def reauth_url(next_url: str) -> str:
    return f"{reverse('confirm_password')}?{urlencode({'next': next_url})}"


def error_response(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    """The one mapping from an ``ApplicationError`` to its response."""
    if isinstance(error, NeedsReauth):
        wanted: str | Callable[[], str] | None = getattr(request, _REAUTH_NEXT, None)
        next_url = (wanted() if callable(wanted) else wanted) or (
            request.get_full_path() if request.method == "GET" else "/"
        )
        if hasattr(request, "_messages"):
            messages.info(request, error.message)
        # Confirming the password then completes this very change (tenancy.views.confirm_password replays it);
        # next_url is where the prompt's Cancel, or a lapsed prompt, leads with the user's choice kept.
        remember_post(request)
        return redirect_page(request, reauth_url(next_url))
    if isinstance(error, NotAllowed):
        response = render(request, "errors/403.html", {"message": error.message}, status=403)
    else:
        page: ErrorPage | None = getattr(request, _ERROR_PAGE, None)
        if page is None:
            response = render(request, "errors/refused.html", {"error": error}, status=error.status)
        else:
            response = page(error)
            response.status_code = error.status
    patch_vary_headers(response, ["HX-Request"])
    return response
