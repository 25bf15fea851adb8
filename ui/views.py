from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponsePermanentRedirect
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from ui.preferences import COOKIE_MAX_AGE, NAV_COOKIE, THEME_COOKIE, THEMES


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


def _remember(response: HttpResponse, request: HttpRequest, name: str, value: str) -> None:
    response.set_cookie(name, value, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True, secure=request.is_secure())


@require_POST
def set_theme(request: HttpRequest) -> HttpResponse:
    """The user menu's theme choice: a plain form, remembered in a cookie that the page renders from."""
    theme = request.POST.get("theme", "")
    if theme not in THEMES:
        return HttpResponseBadRequest("Unknown theme.")
    response = redirect(_back(request))
    _remember(response, request, THEME_COOKIE, theme)
    return response


@require_POST
def set_navigation(request: HttpRequest) -> HttpResponse:
    """Collapse or expand the left navigation (the button's no-script path; with script it only sets the cookie)."""
    state = request.POST.get("nav", "")
    if state not in {"collapsed", "expanded"}:
        return HttpResponseBadRequest("Unknown navigation state.")
    response = redirect(_back(request))
    _remember(response, request, NAV_COOKIE, state)
    return response


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    # Browsers and crawlers ask for /favicon.ico whatever the page links to.
    return HttpResponsePermanentRedirect(static("icons/favicon.ico"))
