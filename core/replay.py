"""Replaying the change that asked for the password once the password is confirmed (see core.pages.error_response
and tenancy.views.confirm_password), so a user never has to make a sensitive change twice."""

from __future__ import annotations

import time

from django.http import HttpRequest

# The change that asked for the password, replayed once the password is confirmed, so the user doesn't have to make
# it again. Kept in the session (so only this signed-in user can complete it) for the prompt's lifetime.
SESSION_PENDING_POST = "reauth_pending_post"
PENDING_POST_MAX_AGE = 10 * 60
_NOT_REPLAYED = frozenset({"csrfmiddlewaretoken"})


def remember_post(request: HttpRequest) -> None:
    """Keep this POST (its path and fields; no files) to replay after the password prompt."""
    if not hasattr(request, "session") or request.method != "POST":
        return
    fields = [[key, values] for key, values in request.POST.lists() if key not in _NOT_REPLAYED]
    request.session[SESSION_PENDING_POST] = {"path": request.path, "fields": fields, "at": int(time.time())}


def pop_post(request: HttpRequest) -> tuple[str, list[tuple[str, list[str]]]] | None:
    """The remembered POST, once; None if there is none or it is older than the prompt's lifetime."""
    pending = request.session.pop(SESSION_PENDING_POST, None) if hasattr(request, "session") else None
    if not isinstance(pending, dict) or time.time() - int(pending.get("at", 0)) > PENDING_POST_MAX_AGE:
        return None
    path, fields = pending.get("path"), pending.get("fields")
    if not isinstance(path, str) or not isinstance(fields, list):
        return None
    return path, [(str(k), [str(v) for v in values]) for k, values in fields]
