"""Errors the readiness services raise; each carries a message a person can act on."""

from __future__ import annotations

from datetime import datetime

from core.errors import Conflict, Invalid


class PhaseChanged(Conflict):
    """The tenant's service phase moved since the page was read; nothing was changed."""


# A refusal with nothing more to say than its message is a plain ``core.errors.Invalid``.


class ReadinessNotMet(Invalid):
    """Starting the monitoring phase before readiness is met, without a reason."""


class RefreshRateLimited(Invalid):
    def __init__(self, message: str, *, allowed_at: datetime) -> None:
        super().__init__(message)
        self.allowed_at = allowed_at
