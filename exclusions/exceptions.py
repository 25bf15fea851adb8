"""What the exclusion services refuse with; each carries the message the page shows."""

from __future__ import annotations

from core.errors import Conflict, Invalid, NeedsConfirmation

# The later document's IMPORTANT text on excluding every high-value asset, verbatim.
HIGH_VALUE_WARNING = (
    "By using this feature, you will also exclude automatically all devices and users that will be tagged as "
    "high-value in the future."
)
# The later document's notes, verbatim where it has them.
DEVICE_GROUPS_NOTE = (
    "This page only lists existing device groups. If you wish to create a new device group, you first need to go "
    "to the Defender for Endpoint settings in your Microsoft Defender portal. Then, refresh this page to search "
    "for and choose the newly created group."
)
USER_GROUPS_NOTE = (
    "This page only lists existing user groups. If you wish to create a new user group, you first need to sign "
    "into the Microsoft Entra ID admin center as a Global Administrator. Then, refresh this page to search for "
    "and choose the newly created group."
)
USERS_ONLY_THROUGH_GROUPS_NOTE = (
    "You can only exclude users by adding them to an Microsoft Entra ID security group. On-prem Entra ID users "
    "cannot be excluded at this time."
)


class ExclusionsError(Invalid):
    message = "The exclusions couldn't be changed."


class StaleExclusions(Conflict, ExclusionsError):
    """Someone else changed the exclusion list since the page was loaded."""

    message = (
        "Someone else changed the exclusions while you were editing. Nothing was saved. "
        "Review the current list below and make your change again."
    )


class NotASecurityGroup(ExclusionsError):
    message = (
        "Only security groups can be excluded: users are excluded only through Microsoft Entra ID security groups."
    )


class HighValueNeedsConfirmation(NeedsConfirmation, ExclusionsError):
    """Excluding every high-value asset also excludes those tagged later; ask first."""

    message = HIGH_VALUE_WARNING
