"""How the contacts services refuse a change: the ``core.errors`` hierarchy, each
refusal naming the form field it is about so the page shows it next to that field."""

from __future__ import annotations

from typing import Any, ClassVar

from core.errors import Conflict, Invalid, NeedsConfirmation


class FieldInvalid(Invalid):
    """An ``Invalid`` about one input of the add form (``field``): the page shows it there, once."""

    field: ClassVar[str] = ""

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        fields = extra.pop("fields", None) or {self.field: [message or self.message]}
        super().__init__(message, fields=fields, **extra)


class ContactNotFound(FieldInvalid):
    """The chosen directory entry isn't in this tenant's directory."""

    field = "entry"


class CannotReceiveEmail(FieldInvalid):
    """A non-mail-enabled group, a disabled user or a user without a mailbox."""

    field = "entry"


class DuplicateContact(FieldInvalid):
    """The entry already holds this notification type."""

    field = "entry"


class InvalidPhone(FieldInvalid):
    """The phone number isn't a valid international number."""

    field = "phone"


class StaleContact(Conflict):
    """Someone else changed or removed the contact since the form was loaded."""


class RateLimited(Invalid):
    """Too many test notifications in a short time."""


class LastIncidentContact(Invalid):
    """During Monitoring and Active, the last incident contact who can receive notifications stays."""


class RemovingLastIncidentContact(NeedsConfirmation):
    """Before Monitoring, removing the last reachable incident contact needs a confirmation naming the consequence."""
