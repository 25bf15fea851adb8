"""``WebCoreMiddleware``: the request context around each request, and the
one place an ``ApplicationError`` becomes a response."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from core.context import client_ip, request_context, user_agent
from core.errors import ApplicationError
from core.pages import error_response

REQUEST_ID_HEADER = "X-Request-ID"


class WebCoreMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_context(ip_address=client_ip(request), user_agent=user_agent(request)) as ctx:
            response = self.get_response(request)
        # Pages answer htmx with fragments at the same URLs; every response says so.
        patch_vary_headers(response, ["HX-Request"])
        response[REQUEST_ID_HEADER] = ctx.request_id
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ApplicationError):
            return error_response(request, exception)
        return None
