"""Record every sign-in, sign-out, failed sign-in and lockout (logger and audit trail).

Each is written in the log of every tenant the account belongs to, with the
client IP and user agent, so a tenant's admins see their members' sign-ins in
their own Audit log. An address that matches no member is recorded without a
tenant (only operators see those). Provider staff are recorded per tenant when
they open it in the provider area (see ``expert_session_record``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from audit.services import audit_record
from core.context import client_ip
from tenancy.mfa import remember_enrolment
from tenancy.models import Tenant, User
from tenancy.reauth import mark_authenticated
from tenancy.services import account_factor_change_record
from tenancy.sessions import session_started

logger = logging.getLogger("portal.auth")


def _tenants_of(user: User | None) -> list[Tenant | None]:
    if user is None:
        return [None]
    return list(Tenant.objects.filter(memberships__user=user).order_by("pk")) or [None]


def _user_for(username: str) -> User | None:
    return User.objects.filter(email__iexact=username.strip()).first() if username else None


def _record(request: HttpRequest | None, *, user: User | None, label: str, action: str, summary: str) -> None:
    # The request context (core.context) gives each row the client IP and user agent.
    for tenant in _tenants_of(user):
        audit_record(tenant=tenant, acting_user=user, actor_label=label, action=action, summary=summary)


def on_logged_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    mark_authenticated(request)
    session_started(request, user)
    remember_enrolment(request, user)
    ip = client_ip(request)
    logger.info("sign-in user=%s ip=%s", user.email, ip)
    _record(request, user=user, label=user.email, action="auth.sign_in", summary=f"{user.email} signed in")


def on_logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    logger.info("sign-out user=%s ip=%s", user.email, client_ip(request))
    _record(request, user=user, label=user.email, action="auth.sign_out", summary=f"{user.email} signed out")


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username") or credentials.get("email") or "")[:200].replace("\x00", "")
    factor = str(credentials.get("factor") or "")
    logger.warning("failed sign-in user=%s ip=%s factor=%s", username, client_ip(request), factor)
    what = f"Failed sign-in ({factor})" if factor else "Failed sign-in"
    user = _user_for(username)
    for tenant in _tenants_of(user):
        # acting_user stays None: nobody proved who they were.
        audit_record(
            tenant=tenant,
            acting_user=None,
            actor_label=username or "unknown",
            action="auth.sign_in_failed",
            summary=f"{what} for {username or 'an empty user name'}",
            target=user,
        )


def on_locked_out(sender: Any, request: HttpRequest | None = None, username: str = "", **kwargs: Any) -> None:
    username = str(username or "")[:200].replace("\x00", "")
    logger.warning("locked out user=%s ip=%s", username, client_ip(request))
    user = _user_for(username)
    for tenant in _tenants_of(user):
        audit_record(
            tenant=tenant,
            acting_user=None,
            actor_label=username or "unknown",
            action="auth.locked_out",
            summary=f"Sign-in locked for {username or 'an empty user name'} after repeated failures",
            target=user,
        )


def on_factor_removed(sender: Any, request: Any = None, user: Any = None, authenticator: Any = None, **kw: Any) -> None:
    # Sent inside the removal's transaction (allauth's MFA views run atomically, see tenancy/urls.py).
    if user is not None and authenticator is not None:
        account_factor_change_record(acting_user=user, authenticator=authenticator, change="removed")


def on_factor_added(sender: Any, request: Any = None, user: Any = None, authenticator: Any = None, **kw: Any) -> None:
    # allauth sends this inside the transaction for a passkey only; an authenticator app and recovery
    # codes are announced after commit, so their views record them (tenancy.views) instead.
    if user is not None and authenticator is not None and authenticator.type == "webauthn":
        account_factor_change_record(acting_user=user, authenticator=authenticator, change="added")


def connect() -> None:
    from allauth.mfa import signals as mfa_signals
    from axes.signals import user_locked_out

    mfa_signals.authenticator_added.connect(on_factor_added, dispatch_uid="portal-factor-added")
    mfa_signals.authenticator_removed.connect(on_factor_removed, dispatch_uid="portal-factor-removed")

    user_logged_in.connect(on_logged_in, dispatch_uid="portal-auth-in")
    user_logged_out.connect(on_logged_out, dispatch_uid="portal-auth-out")
    user_login_failed.connect(on_login_failed, dispatch_uid="portal-auth-failed")
    user_locked_out.connect(on_locked_out, dispatch_uid="portal-auth-locked")
