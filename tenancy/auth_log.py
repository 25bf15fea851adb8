"""Record every sign-in, sign-out and failed sign-in (logger and audit trail)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from audit.services import audit_record
from tenancy.reauth import mark_authenticated
from tenancy.request_ip import client_ip
from tenancy.sessions import session_started

logger = logging.getLogger("portal.auth")


def _ip(request: HttpRequest | None) -> str | None:
    return client_ip(request)


def on_logged_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    mark_authenticated(request)
    session_started(request)
    logger.info("sign-in user=%s ip=%s", user.email, _ip(request))
    audit_record(
        tenant=None, acting_user=user, action="auth.sign_in", summary=f"{user.email} signed in", ip_address=_ip(request)
    )


def on_logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    logger.info("sign-out user=%s ip=%s", user.email, _ip(request))
    audit_record(
        tenant=None,
        acting_user=user,
        action="auth.sign_out",
        summary=f"{user.email} signed out",
        ip_address=_ip(request),
    )


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username") or credentials.get("email") or "")[:200]
    logger.warning("failed sign-in user=%s ip=%s", username, _ip(request))
    audit_record(
        tenant=None,
        acting_user=None,
        actor_label=username or "unknown",
        action="auth.sign_in_failed",
        summary=f"Failed sign-in for {username or 'an empty user name'}",
        ip_address=_ip(request),
    )


def connect() -> None:
    user_logged_in.connect(on_logged_in, dispatch_uid="portal-auth-in")
    user_logged_out.connect(on_logged_out, dispatch_uid="portal-auth-out")
    user_login_failed.connect(on_login_failed, dispatch_uid="portal-auth-failed")
