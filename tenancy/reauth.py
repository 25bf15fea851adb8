"""Recent-authentication checks for sensitive changes.

The session remembers when the user last proved their password (sign-in or
the "Confirm your password" prompt). A sensitive action asks for
``recently_authenticated`` and otherwise sends the user to the prompt.
"""

from __future__ import annotations

import time

from django.http import HttpRequest

SESSION_AUTH_TIME = "auth_time"
REAUTH_WINDOW_SECONDS = 15 * 60


def mark_authenticated(request: HttpRequest) -> None:
    if hasattr(request, "session"):
        request.session[SESSION_AUTH_TIME] = int(time.time())


def recently_authenticated(request: HttpRequest, *, within: int = REAUTH_WINDOW_SECONDS) -> bool:
    stamp = request.session.get(SESSION_AUTH_TIME) if hasattr(request, "session") else None
    return isinstance(stamp, int) and time.time() - stamp <= within
