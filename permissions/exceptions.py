"""Errors the permissions services raise; each carries a user-facing ``message``.

Callers (this app's views and the Get started guide) catch ``PermissionsError``
and show ``message``; the subclasses tell them which follow-up to offer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import Conflict, Invalid, NeedsConfirmation, NeedsReauth

if TYPE_CHECKING:
    from permissions.selectors import AccessLevelsState

# The seed's IMPORTANT texts, verbatim.
SKIP_PERMISSIONS_WARNING = (
    "If you skip providing additional permissions, our experts won't be able to take certain response actions "
    "to secure your organization."
)
# The later document's IMPORTANT note on least privilege, verbatim (the Permissions step and page show it).
LEAST_PRIVILEGE_NOTE = (
    "Microsoft recommends that you use roles with the fewest permissions. This helps improve security for your "
    "organization. Global Administrator is a highly privileged role that should be limited to emergency scenarios "
    "when you can't use an existing role."
)
ALL_DEVICES_WARNING = (
    "If you turn off Access security data from all devices, our experts won't be able to investigate incidents "
    "involving devices that belong to Microsoft Defender for Endpoint device groups."
)


class PermissionsError(Invalid):
    message = "The permissions couldn't be changed."


class StaleEdit(Conflict, PermissionsError):
    """Someone else changed the permissions since the form was loaded."""

    message = (
        "Someone else changed these permissions while you were editing. Nothing was saved. "
        "Review the current settings below and make your change again."
    )

    def __init__(self, current: AccessLevelsState | None = None) -> None:
        super().__init__(current=current)
        self.current = current


class ReducedAccessNeedsConfirmation(NeedsConfirmation, PermissionsError):
    """Turning off the last level that lets experts act; ask before doing it."""

    message = SKIP_PERMISSIONS_WARNING


class ReauthenticationRequired(NeedsReauth, PermissionsError):
    message = "Granting Respond directly to active threats is sensitive. Confirm your password to continue."


class AllDevicesNeedsConfirmation(NeedsConfirmation, PermissionsError):
    """Turning off Access security data from all devices; ask before doing it."""

    message = ALL_DEVICES_WARNING


class ProviderAccessRemoved(PermissionsError):
    message = (
        "Service provider access has been removed, so no access level can be granted. "
        "Restore service provider access first."
    )


class ProviderAccessNotActive(PermissionsError):
    message = "Service provider access isn't active."


class InvalidEndDate(PermissionsError):
    message = "Choose an end date after today and no more than two years ahead."


class GrantNotLive(PermissionsError):
    message = "That access level has already ended. Turn it on again instead of renewing it."
