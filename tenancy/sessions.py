"""Ending a user's signed-in sessions (allauth.usersessions keeps the list)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from allauth.usersessions.adapter import get_adapter
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core.context import client_ip


def user_sessions_end(*, user: Any, keep_session_key: str | None = None) -> int:
    """Sign ``user`` out everywhere (but the session ``keep_session_key``); returns how many ended.

    Deleting the session rows is part of the caller's transaction, so a
    change that rolls back leaves the sessions alone too.
    """
    sessions = [s for s in UserSession.objects.filter(user_id=user.pk) if s.session_key != keep_session_key]
    get_adapter().end_sessions(sessions)
    return len(sessions)


# Keys in the session: when the user signed in (absolute age) and when they
# were last seen (idle timeout, and the "Last activity" of Signed-in sessions).
SESSION_SIGNED_IN_AT = "signed_in_at"
SESSION_ACTIVITY_AT = "activity_at"


def session_started(request: Any, user: Any) -> None:
    """Stamp a new signed-in session and list it in "Signed-in sessions" (called on sign-in)."""
    now = int(time.time())
    request.session[SESSION_SIGNED_IN_AT] = now
    request.session[SESSION_ACTIVITY_AT] = now
    _track(request, user)


def _track(request: Any, user: Any) -> None:
    if not request.session.session_key:
        request.session.save()
    values = {
        "user": user,
        # Test clients and some proxies give no address; the column needs one.
        "ip": client_ip(request) or "0.0.0.0",  # noqa: S104 - a stored placeholder, not a bind address
        "user_agent": str(request.META.get("HTTP_USER_AGENT", ""))[:200],
        "last_seen_at": timezone.now(),
    }
    # One UPDATE in the common case; the row is created on sign-in.
    if not UserSession.objects.filter(session_key=request.session.session_key).update(**values):
        UserSession.objects.get_or_create(session_key=request.session.session_key, defaults=values)


def session_expired(session: Any, *, now: float, idle: int, absolute: int) -> str | None:
    """Why this signed-in session must end ("idle" or "absolute"), or None."""
    signed_in = session.get(SESSION_SIGNED_IN_AT)
    seen = session.get(SESSION_ACTIVITY_AT)
    if isinstance(signed_in, int) and now - signed_in > absolute:
        return "absolute"
    if isinstance(seen, int) and now - seen > idle:
        return "idle"
    return None


class SessionLifetimeMiddleware:
    """Ends sessions idle for SESSION_IDLE_TIMEOUT or older than SESSION_ABSOLUTE_AGE,
    and records the session's last activity (IP, device) for "Signed-in sessions"."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and request.session.session_key:
            now = time.time()
            reason = session_expired(
                request.session,
                now=now,
                idle=settings.SESSION_IDLE_TIMEOUT,
                absolute=settings.SESSION_ABSOLUTE_AGE,
            )
            if reason is not None:
                logout(request)
                messages.info(
                    request,
                    "You were signed out after an hour without activity. Sign in again to continue."
                    if reason == "idle"
                    else "Your session reached its maximum length. Sign in again to continue.",
                )
                return redirect_to_login(request.get_full_path())
            seen = request.session.get(SESSION_ACTIVITY_AT)
            if not isinstance(seen, int) or now - seen >= settings.SESSION_ACTIVITY_RESOLUTION:
                request.session[SESSION_ACTIVITY_AT] = int(now)
                if request.session.get(SESSION_SIGNED_IN_AT) is None:
                    request.session[SESSION_SIGNED_IN_AT] = int(now)
                _track(request, user)
        return self.get_response(request)
