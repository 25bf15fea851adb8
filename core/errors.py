"""One hierarchy for every refusal a service (or a view) can give.

Services raise these; ``core.middleware.WebCoreMiddleware`` turns each kind
into its response in one place, so views carry no ``except`` clauses:

=====================  ======  =============================================================
error                  status  response
=====================  ======  =============================================================
``Invalid``            400     the page again, the user's values kept, ``message`` at the top
``InvalidForm``        400     the same, the form's own errors next to its fields
``Conflict``           409     the page again, the user's values kept, what changed meanwhile
``NeedsConfirmation``  200     the page again, asking the user to confirm ``message``
``NeedsReauth``        302     the "Confirm your password" prompt, then back to the page
``NotAllowed``         403     the access-denied page with ``message``
=====================  ======  =============================================================

Every error carries a ``message`` a person can act on and keyword ``extra``
details for the page (for example ``current=`` state after a conflict).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied


class ApplicationError(Exception):
    """A change was refused; ``message`` says why, in the portal's words."""

    status: ClassVar[int] = 400
    message: str = "That didn't work. Try again."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        if message is not None:
            self.message = message
        self.extra = extra
        super().__init__(self.message)


class Invalid(ApplicationError):
    """The request can't be carried out as asked (a form-level error).

    ``fields`` maps a form field to its messages, when the service can say
    which input is wrong (the page puts them next to those fields).
    """

    status = 400

    def __init__(self, message: str | None = None, *, fields: dict[str, list[str]] | None = None, **extra: Any) -> None:
        self.fields = fields or {}
        if message is None and self.fields:
            message = " ".join(m for msgs in self.fields.values() for m in msgs)
        super().__init__(message, **extra)


class InvalidForm(Invalid):
    """The submitted form has errors; the form itself shows them, next to its fields."""

    message = "Check the highlighted fields and try again."


class Conflict(ApplicationError):
    """Someone else changed the data since the form was loaded; nothing was saved."""

    status = 409
    message = "Someone else changed this while you were editing. Nothing was saved. Review it and try again."


class NeedsConfirmation(ApplicationError):
    """The change has a consequence the user must confirm first (``message`` says which)."""

    status = 200


class NeedsReauth(ApplicationError):
    """The change is sensitive: the user must confirm their password first."""

    status = 302
    message = "Confirm your password to continue."


class NotAllowed(ApplicationError, PermissionDenied):
    """The signed-in user may not do this (a ``PermissionDenied`` too, so Django's 403 handling agrees)."""

    status = 403
    message = "You don't have permission to do that."
