"""The request context: who is asking from where, for the audit trail.

``WebCoreMiddleware`` sets it for the length of each request (a contextvar,
as NetBox does), so ``audit_record`` can stamp every row with the client IP
and the request id without services passing them along by hand. Outside a
request (Celery tasks, management commands) there is none and rows carry
neither.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    ip_address: str | None
    # The browser or client (sign-ins, experts' sessions, any change); bounded like the audit column.
    user_agent: str = ""


USER_AGENT_MAX = 300

_current: ContextVar[RequestContext | None] = ContextVar("portal_request_context", default=None)


def current_request_context() -> RequestContext | None:
    """The context of the request being served, or ``None`` outside one."""
    return _current.get()


@contextmanager
def request_context(
    *, ip_address: str | None, request_id: str | None = None, user_agent: str = ""
) -> Iterator[RequestContext]:
    """Serve one request (or a test) inside a context; restored afterwards."""
    ctx = RequestContext(
        request_id=request_id or uuid.uuid4().hex,
        ip_address=ip_address,
        user_agent=user_agent[:USER_AGENT_MAX].replace("\x00", ""),
    )
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def client_ip(request: HttpRequest | None) -> str | None:
    """REMOTE_ADDR, or — behind ``TRUSTED_PROXY_HOPS`` reverse proxies — the
    address the outermost trusted proxy saw.

    X-Forwarded-For is only believed for the hops we run ourselves: a client
    can prepend anything, so we count from the right, where our proxies
    append, and ignore the rest.
    """
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR") or None
    hops: int = getattr(settings, "TRUSTED_PROXY_HOPS", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops > 0 and forwarded:
        chain = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(chain) >= hops:
            candidate = chain[-hops]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                return remote
    return remote


def user_agent(request: HttpRequest | None) -> str:
    return str(request.META.get("HTTP_USER_AGENT", "")) if request is not None else ""
