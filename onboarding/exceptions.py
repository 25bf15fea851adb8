"""Errors the onboarding services raise: the web core's kinds (``core.errors``), each
with a user-facing message; ``core.middleware`` maps them to responses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import Conflict, Invalid, NeedsConfirmation
from permissions.exceptions import SKIP_PERMISSIONS_WARNING

if TYPE_CHECKING:
    from onboarding.models import GuideProgress


class InvitationError(Invalid):
    """The welcome email can't be sent (wrong phase, nobody to send it to)."""


class LinkError(Invalid):
    """A welcome link that can't be used; ``reason`` picks the explanation page."""

    reason = "invalid"


class LinkExpired(LinkError):
    reason = "expired"
    message = "This link has expired."


class LinkInvalid(LinkError):
    reason = "invalid"
    message = "This link isn't valid."


class LinkReplaced(LinkError):
    reason = "replaced"
    message = "This link has been replaced by a newer welcome email."


class GuideNotAvailable(Invalid):
    message = (
        # The seed's words; then what the reader can do meanwhile.
        "Once the Defender Experts for XDR team is ready to onboard your organization, you'll receive a welcome "
        "email to continue the setup and get you started. The Get started guide opens then."
    )


class GuideConflict(Conflict):
    """Someone else changed the guide since this page was loaded."""

    def __init__(self, progress: GuideProgress, message: str | None = None) -> None:
        self.progress = progress
        who = progress.updated_by.display_name if progress.updated_by else "Another administrator"
        super().__init__(
            message
            or f"{who} changed the guide while you were on this page. "
            "Here is the current state; review it and continue."
        )


class StepIncomplete(Invalid):
    """The step can't be completed yet (e.g. no contact added)."""


class SkipNeedsConfirmation(NeedsConfirmation):
    # The seed's IMPORTANT text, from the one place the Permissions page uses too.
    message = SKIP_PERMISSIONS_WARNING
