"""The welcome email's link: a signed, expiring token around a random nonce.

``TimestampSigner`` with our own salt makes the token tamper-proof and
expiring; the nonce (stored in an ``Invitation`` row) makes it unguessable
and revocable. The token carries no tenant id, so a forwarded or leaked
link tells nothing about whose it is.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core import signing
from django.urls import reverse

LINK_SALT = "onboarding.welcome-link.v1"
DEFAULT_LINK_MAX_AGE = 14 * 24 * 3600


def link_max_age() -> int:
    """Seconds a welcome link stays valid (setting ``ONBOARDING_LINK_MAX_AGE``, default 14 days)."""
    return int(getattr(settings, "ONBOARDING_LINK_MAX_AGE", DEFAULT_LINK_MAX_AGE))


def link_lifetime_text() -> str:
    """How long a link works, for people: "14 days", "12 hours", "30 minutes"."""
    seconds = link_max_age()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def token_for_nonce(nonce: str) -> str:
    return signing.TimestampSigner(salt=LINK_SALT).sign(nonce)


def nonce_from_token(token: str) -> str:
    """The nonce, or ``signing.SignatureExpired`` / ``signing.BadSignature``."""
    return signing.TimestampSigner(salt=LINK_SALT).unsign(token, max_age=link_max_age())


def link_path(nonce: str) -> str:
    return reverse("onboarding:invitation", kwargs={"token": token_for_nonce(nonce)})


def link_url(nonce: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{link_path(nonce)}"
