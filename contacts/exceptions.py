"""Errors the contacts services raise; each carries a user-facing ``message``."""

from __future__ import annotations


class ContactError(Exception):
    """A change to notification contacts was refused; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContactNotFound(ContactError):
    """The chosen directory entry isn't in this tenant's directory."""


class CannotReceiveEmail(ContactError):
    """A non-mail-enabled group, a disabled user or a user without a mailbox."""


class DuplicateContact(ContactError):
    """The entry already holds this notification type."""


class InvalidPhone(ContactError):
    """The phone number isn't a valid international number (or isn't allowed here)."""


class StaleContact(ContactError):
    """Someone else changed or removed the contact since the form was loaded."""


class RateLimited(ContactError):
    """Too many test notifications in a short time."""
