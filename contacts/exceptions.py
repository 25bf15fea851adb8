"""Errors the contacts services raise; each carries a user-facing ``message``."""

from __future__ import annotations

from core.errors import Conflict, Invalid


class ContactError(Invalid):
    """A change to notification contacts was refused; ``message`` says why."""


class ContactNotFound(ContactError):
    """The chosen directory entry isn't in this tenant's directory."""


class CannotReceiveEmail(ContactError):
    """A non-mail-enabled group, a disabled user or a user without a mailbox."""


class DuplicateContact(ContactError):
    """The entry already holds this notification type."""


class InvalidPhone(ContactError):
    """The phone number isn't a valid international number (or isn't allowed here)."""


class StaleContact(Conflict, ContactError):
    """Someone else changed or removed the contact since the form was loaded."""


class RateLimited(ContactError):
    """Too many test notifications in a short time."""
