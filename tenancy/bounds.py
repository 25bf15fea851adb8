"""One validated parser per kind of input: dates, instants, integers and ids.

Every view and form reads dates, numbers and ids from a request through these,
so a value out of range (``9999-12-31``, ``99999999999999999999``, ``-1``)
is a form error or a 404, never an overflow deeper down (a 500). The bounds
are the ones the database and Python's ``date`` arithmetic can carry.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

# Far enough for any real filter, short of date.max so "the day after" still exists.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2999, 12, 31)
# PostgreSQL's bigint (and SQLite's integer): the range of every primary key here.
MAX_ID = 2**63 - 1
# Any other integer a request may carry (versions, counts, page numbers).
MAX_INT = 2**31 - 1

DATE_RANGE_MESSAGE = f"Enter a date between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}."


def parse_date(raw: Any) -> date | None:
    """An ISO date within [MIN_DATE, MAX_DATE], or None."""
    if isinstance(raw, date):
        value = raw
    else:
        text = str(raw or "").strip()
        if not text or len(text) > 10:
            return None
        try:
            value = date.fromisoformat(text)
        except ValueError:
            return None
    return value if MIN_DATE <= value <= MAX_DATE else None


def parse_datetime(raw: Any) -> datetime | None:
    """An ISO instant with its offset (what a form carries as the version it was read at), or None."""
    text = str(raw or "").strip()
    if not text or len(text) > 40:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None or not MIN_DATE <= value.date() <= MAX_DATE:
        return None
    return value


def parse_int(raw: Any, *, minimum: int = -MAX_INT, maximum: int = MAX_INT) -> int | None:
    """A decimal integer within [minimum, maximum], or None (letters, NUL bytes, overflow...)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw if raw is not None else "").strip()
        digits = text[1:] if text[:1] in "+-" else text
        # Bounded length before int(): a 10,000-digit string is refused, not parsed.
        if not digits.isascii() or not digits.isdigit() or len(digits) > 20:
            return None
        value = int(text)
    return value if minimum <= value <= maximum else None


def parse_id(raw: Any) -> int | None:
    """A primary key: a positive integer the database can hold, or None."""
    return parse_int(raw, minimum=1, maximum=MAX_ID)


class BoundedDateField(forms.DateField):
    """A date field that refuses dates outside [MIN_DATE, MAX_DATE] with a form error."""

    def to_python(self, value: Any) -> date | None:
        result = super().to_python(value)
        if result is not None and parse_date(result) is None:
            raise ValidationError(DATE_RANGE_MESSAGE, code="out_of_range")
        return result


class BoundedIntegerField(forms.IntegerField):
    """An integer field that is never unbounded: by default within ±MAX_INT."""

    def __init__(self, *, min_value: int | None = None, max_value: int | None = None, **kwargs: Any) -> None:
        super().__init__(
            min_value=-MAX_INT if min_value is None else min_value,
            max_value=MAX_INT if max_value is None else max_value,
            **kwargs,
        )

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        # Refuse absurdly long input before int() (Django parses up to its own limit).
        if len(str(value)) > 21:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class IdField(BoundedIntegerField):
    """A primary key from a form: 1..MAX_ID."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)
