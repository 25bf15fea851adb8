"""Phone numbers of contacts: stored in E.164 ("+14255550142"), shown one way everywhere.

``phone_normalize`` is the one parser (services call it before storing);
``phone_display`` (``core/phones.py``, so the audit log can use it too) the
one formatter: pages, the guide, audit summaries and the audit log's values.
"""

from __future__ import annotations

import phonenumbers

from contacts.exceptions import InvalidPhone
from core.phones import phone_display

__all__ = ["PHONE_HELP", "phone_display", "phone_normalize"]

PHONE_HELP = "Enter the number in international format, starting with + and the country code, e.g. +1 425 555 0100."


def phone_normalize(raw: str) -> str:
    """A valid international number in E.164 form, or "" for blank; else ``InvalidPhone``."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    if not raw.startswith("+"):
        raise InvalidPhone(f"The phone number must be in international format. {PHONE_HELP}")
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(f"That isn't a phone number we recognise. {PHONE_HELP}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(f"That isn't a valid phone number. {PHONE_HELP}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
