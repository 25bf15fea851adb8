"""Reading a tenant's audit trail (the audit page and its CSV export)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import models
from django.db.models import Count, Min, Q, QuerySet

from audit.models import AuditEvent
from core.keyset import KeysetPage, keyset_page
from tenancy.models import Tenant

# The Audit log's views: every event, members' sign-ins, and what the provider's experts did.
VIEW_ALL = ""
VIEW_SIGN_INS = "sign-ins"
VIEW_EXPERTS = "experts"
VIEWS = {VIEW_ALL: "All events", VIEW_SIGN_INS: "Sign-ins", VIEW_EXPERTS: "Experts' activity"}


@dataclass(frozen=True)
class AuditFilters:
    view: str = VIEW_ALL
    category: str = ""
    action: str = ""
    actor: str = ""
    q: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def as_query(self) -> dict[str, str]:
        out = {
            "view": self.view,
            "category": self.category,
            "action": self.action,
            "actor": self.actor,
            "q": self.q,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {k: v for k, v in out.items() if v}


def audit_events(*, tenant: Tenant, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """The tenant's events, newest first, narrowed by the filters (never another tenant's).

    From/To are UTC days, like the page's "Time (UTC)" column and the CSV's
    ``time_utc``, so a filtered day holds exactly the rows shown with that date.
    """
    qs = AuditEvent.objects.for_tenant(tenant)
    if filters.view == VIEW_SIGN_INS:
        qs = qs.filter(action__startswith="auth.")
    elif filters.view == VIEW_EXPERTS:
        # Sessions, attempted actions (allowed or refused) and anything else the provider's staff did here.
        qs = qs.filter(Q(action__startswith="experts.") | Q(actor__provider_staff__isnull=False))
    if filters.category:
        qs = qs.filter(action__startswith=f"{filters.category}.")
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.actor:
        qs = qs.filter(actor_label__iexact=filters.actor)
    if filters.q:
        qs = qs.filter(Q(summary__icontains=filters.q) | Q(target_id=filters.q))
    if filters.date_from:
        qs = qs.filter(created_at__gte=datetime.combine(filters.date_from, time.min, tzinfo=UTC))
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=UTC)
        qs = qs.filter(created_at__lt=end)
    return qs.order_by("-created_at", "-id")


# The log's length is counted up to this many events (a COUNT over a LIMIT), then shown as "more than".
COUNT_LIMIT = 10_000


def _aware_moment(text: str) -> datetime:
    """A cursor's time: ISO 8601 with its offset (a hand-edited one without is refused: the first page)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a cursor's time carries its offset")
    return moment


def audit_page(
    *, tenant: Tenant, filters: AuditFilters, per_page: int, after: Any = "", before: Any = "", number: Any = 1
) -> KeysetPage[AuditEvent]:
    """The filtered events after the ``after`` cursor, before the ``before`` cursor, or the newest ones
    (two queries: the bounded count and the page), newest first."""
    return keyset_page(
        audit_events(tenant=tenant, filters=filters),
        field="created_at",
        per_page=per_page,
        after=after,
        before=before,
        number=number,
        count_limit=COUNT_LIMIT,
        descending=True,
        value_of=_aware_moment,
    )


def audit_filter_choices(*, tenant: Tenant) -> dict[str, Any]:
    """Actions and actors that occur in this tenant's trail: one query (DISTINCT pairs), categories derived."""
    pairs = list(AuditEvent.objects.for_tenant(tenant).order_by().values_list("action", "actor_label").distinct())
    actions = sorted({a for a, _ in pairs})
    actors = sorted({b for _, b in pairs})
    categories = sorted({a.split(".", 1)[0] for a in actions})
    return {"actions": actions, "actors": actors, "categories": categories}


def recent_events(
    *, tenant: Tenant, action_prefix: str = "", actions: tuple[str, ...] = (), limit: int = 10
) -> list[AuditEvent]:
    """A page's "recent changes": the tenant's latest events of one app (``action_prefix``) or of ``actions``."""
    qs = AuditEvent.objects.for_tenant(tenant)
    if action_prefix:
        qs = qs.filter(action__startswith=action_prefix)
    if actions:
        qs = qs.filter(action__in=actions)
    return list(qs.order_by("-created_at", "-id")[:limit])


@dataclass(frozen=True)
class EventCount:
    count: int
    oldest: datetime | None


def events_since(*, tenant: Tenant, action: str, target: models.Model, since: datetime) -> EventCount:
    """How many ``action`` events on ``target`` the tenant's trail holds since ``since``, and the oldest's time.

    What a rate limit counts (e.g. test notifications per contact): the trail
    is the record of what was done, so the limit can't drift from it.
    """
    counted = (
        AuditEvent.objects.for_tenant(tenant)
        .filter(
            action=action,
            target_type=target._meta.label_lower,
            target_id=str(target.pk),
            created_at__gte=since,
        )
        .aggregate(n=Count("id"), oldest=Min("created_at"))
    )
    return EventCount(count=counted["n"], oldest=counted["oldest"])
