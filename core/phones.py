"""How a phone number is shown, in one place for every page, email and log."""

from __future__ import annotations

import phonenumbers


def phone_display(e164: str) -> str:
    """The one way a phone number is shown: "+1 425 555 0142", "+44 20 7946 0958".

    libphonenumber's international format, with its hyphens (the North
    American style, "+1 425-555-0142") turned into spaces, so numbers from
    every country read alike side by side.
    """
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL).replace("-", " ")
