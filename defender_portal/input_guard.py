"""The one place that keeps malformed text out of the portal.

PostgreSQL can't store or compare a NUL character (psycopg raises
``DataError``), and text that isn't UTF-8 can't be shown or searched
faithfully. No browser sends either; a request carrying them is refused here
with a 400, before sessions, views or forms see it. Checked: the path, every
query-string name and value, every form field of a urlencoded or multipart
body (and upload file names), every cookie and every request header.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger("portal.security")

NUL = "\x00"


def _urlencoded_problem(raw: str, where: str) -> str | None:
    """A query string or urlencoded body (its bytes as ISO-8859-1, as WSGI gives them):
    raw bytes and percent-escapes alike must decode to UTF-8 without NUL."""
    if not raw.isascii():
        try:
            raw = raw.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return f"{where} isn't valid UTF-8"
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return f"{where} isn't valid UTF-8"
    except ValueError:
        return f"{where} is malformed"
    for name, value in pairs:
        if NUL in name or NUL in value:
            return f"{where} contains a NUL character"
    return None


def _texts_problem(values: Iterable[str], where: str) -> str | None:
    for value in values:
        if NUL in value:
            return f"{where} contains a NUL character"
    return None


def _header_problem(request: HttpRequest) -> str | None:
    for key, value in request.META.items():
        if not key.startswith("HTTP_") or not isinstance(value, str):
            continue
        if NUL in value:
            return f"the {key[5:].replace('_', '-').title()} header contains a NUL character"
        try:
            # WSGI hands headers over as ISO-8859-1; their bytes must be UTF-8.
            value.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return f"the {key[5:].replace('_', '-').title()} header isn't valid UTF-8"
    return None


def bad_input_reason(request: HttpRequest) -> str | None:
    """Why the request can't be accepted, or None if its text is all well-formed."""
    problem = _urlencoded_problem(request.META.get("QUERY_STRING", ""), "the query string")
    if problem:
        return problem
    problem = _header_problem(request)
    if problem:
        return problem
    problem = _texts_problem([*request.COOKIES.keys(), *request.COOKIES.values()], "a cookie")
    if problem:
        return problem
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        content_type = request.content_type or ""
        if content_type == "application/x-www-form-urlencoded":
            try:
                body = request.body.decode("latin-1")  # the bytes as they came
            except Exception:  # noqa: BLE001 - too large or unreadable: let Django answer as it does
                return None
            return _urlencoded_problem(body, "the form")
        if content_type == "multipart/form-data":
            values = [text for _, texts in request.POST.lists() for text in texts]
            names = [upload.name or "" for _, uploads in request.FILES.lists() for upload in uploads]
            return _texts_problem([*request.POST.keys(), *values, *names], "the form")
    return None


class InputGuardMiddleware:
    """Refuses, with a 400, any request whose text the portal couldn't store or search."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Rendered without a request: no session or user is read for a refused request, on purpose.
        if NUL in request.path_info:
            # A NUL in an address is a malformed id, and a malformed id is "not found".
            html = render_to_string("errors/400.html", {"not_found": True})
            return HttpResponse(html, status=404)
        reason = bad_input_reason(request)
        if reason is None:
            return self.get_response(request)
        logger.info("refused a request to %s: %s", request.path_info[:200], reason)
        html = render_to_string("errors/400.html", {"reason": reason})
        return HttpResponse(html, status=400)
