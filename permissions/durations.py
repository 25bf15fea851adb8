"""How long a grant lasts.

The default is 180 days: long enough to carry a tenant through onboarding,
the monitoring phase and the first service reviews without access lapsing in
the middle of an investigation, and short enough that an administrator
consciously re-approves the experts' access twice a year (least privilege,
in line with time-bound delegated admin relationships). The maximum is two
years, the longest a delegated admin relationship may last.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db import models
from django.utils import timezone

DEFAULT_DURATION_DAYS = 180
MAX_DURATION = timedelta(days=730)


class Duration(models.TextChoices):
    DAYS_30 = "30", "30 days"
    DAYS_90 = "90", "90 days"
    DAYS_180 = "180", "180 days (default)"
    YEAR = "365", "1 year"
    CUSTOM = "custom", "Custom end date"


DEFAULT_DURATION = Duration.DAYS_180


def default_end(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(days=DEFAULT_DURATION_DAYS)


def custom_end_instant(day: date) -> datetime:
    """A custom end date grants access through the whole of that day (UTC): the
    last microsecond of it, so the end date shown is the date the admin chose."""
    return datetime.combine(day, time.max, tzinfo=UTC)


def end_for(
    *, duration: str, custom_end: date | None, now: datetime | None = None, extend_from: datetime | None = None
) -> datetime | None:
    """The end instant for a duration choice; ``None`` if the choice is invalid.

    A duration counts from now, or, for a renewal (``extend_from``, the
    grant's current end), from that end date: "Extend by 90 days" always adds
    90 days. A custom end date is absolute (see ``custom_end_instant``).
    """
    now = now or timezone.now()
    if duration == Duration.CUSTOM:
        if custom_end is None:
            return None
        end = custom_end_instant(custom_end)
    elif duration in Duration.values:
        start = max(extend_from, now) if extend_from is not None else now
        end = start + timedelta(days=int(duration))
    else:
        return None
    if not is_valid_end(end, now=now):
        return None
    return end


def is_valid_end(end: datetime, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return now + timedelta(hours=1) <= end <= now + MAX_DURATION + timedelta(days=1)
