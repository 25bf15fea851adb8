"""The requester's IP address for the audit trail and sign-in log."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


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
