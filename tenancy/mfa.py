"""Multi-factor sign-in (django-allauth's ``allauth.mfa``) fitted to the portal.

* Who must use a second factor: provider staff and operators always; a
  tenant member whose role can change settings when the tenant requires it
  (``Tenant.require_mfa_for_admins``, on by default). Until they enrol, every
  page sends them to the guided enrolment (Multi-factor sign-in).
* django-axes throttles every factor: a wrong authenticator or recovery code
  counts as a failed sign-in for the account, like a wrong password, and a
  locked account can't try codes either.
* Sign-up is closed (operators create accounts) and the client IP is the
  portal's (``core.context.client_ip``: trusted proxies only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.base.forms import AuthenticateForm as BaseAuthenticateForm
from allauth.mfa.base.forms import ReauthenticateForm as BaseReauthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.webauthn.forms import AuthenticateWebAuthnForm as BaseAuthenticateWebAuthnForm
from allauth.mfa.webauthn.forms import EditWebAuthnForm as BaseEditWebAuthnForm
from allauth.mfa.webauthn.forms import ReauthenticateWebAuthnForm as BaseReauthenticateWebAuthnForm
from allauth.mfa.webauthn.internal import auth as webauthn
from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from core.context import client_ip

T = TypeVar("T")

SESSION_MFA_ENROLLED = "mfa_enrolled"
LOCKED_MESSAGE = "Too many sign-in attempts. Wait 15 minutes, then try again."
TOTP_ISSUER = "Microsoft Defender Experts portal"


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "email_password_mismatch": "That email and password don't match an account. Check them and try again.",
        "account_inactive": "This account is disabled. Contact your administrator.",
    }

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def get_client_ip(self, request: HttpRequest) -> str:
        return client_ip(request) or "0.0.0.0"  # noqa: S104 - a stored placeholder, not a bind address


class MFAAdapter(DefaultMFAAdapter):
    def get_totp_issuer(self) -> str:
        return TOTP_ISSUER


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account an attempt is for, whichever form sent it (allauth's ``login``, ``email``, an MFA code)."""
    if credentials:
        for key in ("username", "email", "login"):
            if credentials.get(key):
                return str(credentials[key]).strip().lower()
    data = getattr(request, "POST", {}) or {}
    value = data.get("login") or data.get("username") or ""
    return str(value).strip().lower() or None


def _check_and_count(form: forms.Form, user: Any, validate: Callable[[], T], factor: str) -> T:
    request = allauth_context.request
    credentials = {"username": user.email}
    if not AxesProxyHandler.is_allowed(request, credentials):
        raise forms.ValidationError(LOCKED_MESSAGE, code="locked")
    try:
        return validate()
    except forms.ValidationError:
        # Counted by django-axes (and written to the sign-in log) like a wrong password.
        user_login_failed.send(
            sender=type(form), credentials={"username": user.email, "factor": factor}, request=request
        )
        raise


class AuthenticateForm(BaseAuthenticateForm):
    """The sign-in's second step: an authenticator app or recovery code, throttled by django-axes."""

    def clean_code(self) -> str:
        code: str = _check_and_count(self, self.user, super().clean_code, "authenticator code")
        return code


class EditWebAuthnForm(BaseEditWebAuthnForm):
    """Renaming a passkey (allauth sends no signal for it): audited like adding or removing one."""

    def save(self) -> Authenticator:
        from tenancy.services import account_factor_change_record

        authenticator: Authenticator = super().save()
        account_factor_change_record(acting_user=authenticator.user, authenticator=authenticator, change="renamed")
        return authenticator


class ReauthenticateForm(BaseReauthenticateForm):
    def clean_code(self) -> str:
        code: str = _check_and_count(self, self.user, super().clean_code, "authenticator code")
        return code


class AuthenticateWebAuthnForm(BaseAuthenticateWebAuthnForm):
    """The sign-in's second step with a passkey: a refused passkey counts like a wrong password."""

    def clean_credential(self) -> Authenticator:
        return _check_and_count(self, self.user, super().clean_credential, "passkey")


class ReauthenticateWebAuthnForm(BaseReauthenticateWebAuthnForm):
    def clean_credential(self) -> Authenticator:
        return _check_and_count(self, self.user, super().clean_credential, "passkey")


def has_authenticator(user: Any) -> bool:
    return bool(Authenticator.objects.filter(user_id=user.pk).exists())


def code_authenticators(user: Any) -> list[Authenticator]:
    """The authenticators that check a typed code (app and recovery codes; passkeys can't)."""
    return list(Authenticator.objects.filter(user_id=user.pk).exclude(type=Authenticator.Type.WEBAUTHN))


def verify_code(request: HttpRequest, user: Any, code: str) -> bool:
    """A second-factor check for sensitive steps (the Respond re-prompt), throttled like sign-in."""
    credentials = {"username": user.email}
    if not AxesProxyHandler.is_allowed(request, credentials):
        return False
    for authenticator in code_authenticators(user):
        if authenticator.wrap().validate_code(code.strip()):
            authenticator.record_usage()
            return True
    user_login_failed.send(
        sender=__name__, credentials={"username": user.email, "factor": "authenticator code"}, request=request
    )
    return False


def has_passkey(user: Any) -> bool:
    return bool(Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.WEBAUTHN).exists())


def passkey_request_options(user: Any) -> dict[str, Any]:
    """What the browser needs to ask for one of ``user``'s passkeys (the challenge is kept in the session)."""
    return {"request_options": webauthn.begin_authentication(user)}


def verify_passkey(request: HttpRequest, user: Any, credential: Any) -> bool:
    """A passkey as the second factor of a sensitive step, throttled like sign-in (a refusal counts)."""
    credentials = {"username": user.email}
    if not AxesProxyHandler.is_allowed(request, credentials):
        return False
    try:
        webauthn.parse_authentication_response(credential)
        authenticator = webauthn.complete_authentication(user, credential)
    except forms.ValidationError:
        user_login_failed.send(
            sender=__name__, credentials={"username": user.email, "factor": "passkey"}, request=request
        )
        return False
    authenticator.record_usage()
    return True


def mfa_required(request: HttpRequest) -> bool:
    """Whether this signed-in user must have a second factor."""
    user = request.user
    if getattr(request, "provider_staff", None) is not None or user.is_superuser:
        return True
    membership = getattr(request, "membership", None)
    return bool(membership is not None and membership.can_manage and membership.tenant.require_mfa_for_admins)


def remember_enrolment(request: HttpRequest, user: Any) -> None:
    """Cache in the session whether the user has a second factor (checked once per sign-in, not per page)."""
    if hasattr(request, "session"):
        request.session[SESSION_MFA_ENROLLED] = has_authenticator(user)


# Paths a user who must enrol can still reach: the enrolment itself, signing out, static files.
ENROLMENT_PREFIXES = ("/account/two-factor/", "/account/reauthenticate/", "/sign-out/", "/static/", "/healthz/")


class MFAEnrolmentMiddleware:
    """Sends users who must have a second factor, and have none, to the guided enrolment."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.user.is_authenticated
            and request.session.get(SESSION_MFA_ENROLLED) is not True
            and not request.path.startswith(ENROLMENT_PREFIXES)
            and mfa_required(request)
        ):
            # Not known to be enrolled: look (one query, only for users held at enrolment).
            remember_enrolment(request, request.user)
            if request.session[SESSION_MFA_ENROLLED]:
                return self.get_response(request)
            target = reverse("mfa_index")
            if request.headers.get("HX-Request"):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return redirect(target)
        return self.get_response(request)


def on_authenticator_changed(sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any) -> None:
    if request is not None and user is not None:
        remember_enrolment(request, user)


def connect() -> None:
    from allauth.mfa import signals

    signals.authenticator_added.connect(on_authenticator_changed, dispatch_uid="portal-mfa-added")
    signals.authenticator_removed.connect(on_authenticator_changed, dispatch_uid="portal-mfa-removed")
