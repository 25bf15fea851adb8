"""Reads for notification contacts and the directory search that feeds them."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, Window
from django.db.models.functions import Coalesce, RowNumber

from audit.models import AuditEvent
from contacts.models import DirectoryState, EntryKind, NotificationContact, NotificationType, directory_entry_state
from environment.models import DirectoryGroup, DirectoryUser, GroupMembership
from tenancy.models import Tenant

MIN_QUERY_LENGTH = 2
MAX_RESULTS = 10
# How many members a team's preview lists before "and N more".
TEAM_PREVIEW_LIMIT = 25

# Ranks, best first.
RANK_EXACT = 0
RANK_PREFIX = 1
RANK_SUBSTRING = 2


def clean_query(query: str) -> str:
    """What was typed, minus what can't be in a name or address, single-spaced.

    Control characters (a NUL byte, which PostgreSQL refuses in text) are
    dropped rather than searched for; tabs and newlines count as spaces. Case
    and accents are folded by the database (``environment/search.py``).
    """
    cleaned = "".join(ch for ch in unicodedata.normalize("NFC", query or "") if ch.isprintable() or ch.isspace())
    return " ".join(cleaned.split())


@dataclass(frozen=True)
class DirectoryResult:
    kind: str  # EntryKind
    id: int
    display_name: str
    mail: str
    user_principal_name: str
    enabled: bool
    mail_enabled: bool
    member_count: int
    rank: int
    # Notification types this entry already holds (so the picker can say so).
    held_types: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_team(self) -> bool:
        return self.kind == EntryKind.GROUP

    @property
    def value(self) -> str:
        """The picker's form value, e.g. ``user:12``."""
        return f"{self.kind}:{self.id}"

    @property
    def refusal(self) -> str:
        """Why this entry can't be added, or "" if it can."""
        state = directory_entry_state(
            kind=self.kind, exists=True, enabled=self.enabled, mail=self.mail, mail_enabled=self.mail_enabled
        )
        return "" if state == DirectoryState.OK else str(state.label)

    @property
    def can_add(self) -> bool:
        return not self.refusal

    def holds(self, notification_type: str) -> bool:
        return notification_type in self.held_types


# The folded query, as SQL. PostgreSQL evaluates these IMMUTABLE expressions of
# a constant once, while planning, so every condition below reaches the planner
# as a constant pattern that the indexes can answer.
_Q = "directory_fold(%(q)s)"
_Q_LIKE = rf"replace(replace(replace({_Q}, '\', '\\'), '%%', '\%%'), '_', '\_')"


def directory_search(*, tenant: Tenant, query: str, limit: int = MAX_RESULTS) -> list[DirectoryResult]:
    """Users and groups of the tenant matching ``query``, best first, in ONE query.

    Matching is on ``search_text`` ("name  mail  upn", folded by the
    database's ``directory_fold``: unaccent and lower case), and the query is
    folded by the same function in the same statement, so case and accents
    (ı, ø, ł, æ included) never matter. Ranking: an exact display name, mail
    or UPN first; then a prefix (of the name first, then of any word of it,
    of the mail or of the UPN); then any substring; ties in ``search_text``
    order.

    How it stays fast at 100,000 entries: each table has four tiers, each
    the first ``limit`` rows in ``search_text`` order whose rank is at most
    exact, name prefix, any prefix, substring. The true top ``limit`` are
    always among them (a row left out of its tier has ``limit`` rows at
    least as good ahead of it), so only these few candidates are ranked.
    Each tier is one index access the planner picks from its statistics: a
    range of the ``(tenant, search_text)`` b-tree for exact names and
    prefixes; for word prefixes and substrings, a walk of that b-tree in
    order that stops at the ``limit``-th match when matches are common, or
    the pg_trgm index (three letters or more, and word starts) or the
    two-letter index of ``directory_bigrams`` when they are rare (see
    ``environment/models.py``). Only the returned rows get their member
    count and "already a contact" subqueries. Queries shorter than two
    characters return nothing without touching the database.
    """
    q = clean_query(query)
    if len(q) < MIN_QUERY_LENGTH:
        return []
    limit = max(1, min(int(limit), MAX_RESULTS))

    users = DirectoryUser._meta.db_table
    groups = DirectoryGroup._meta.db_table
    members = GroupMembership._meta.db_table
    contacts = NotificationContact._meta.db_table
    params: dict[str, Any] = {
        "tenant": tenant.pk,
        "q": q,
        "limit": limit,
        "incident": NotificationType.INCIDENT.value,
        "service_review": NotificationType.SERVICE_REVIEW.value,
    }
    # Conditions on search_text, whose "C" collation is byte order, the b-tree's.
    #
    # The whole name is q: search_text is q, or q, two spaces, then the
    # addresses (parts are joined by two spaces, words by one; " " < "!").
    exact_name = f"(search_text = {_Q} OR (search_text >= {_Q} || '  ' AND search_text < {_Q} || ' !'))"
    # A whole address (only a query with "@" and no space can be one): a part after the name.
    exact_address = (
        f"({_Q} LIKE '%%@%%' AND {_Q} NOT LIKE '%% %%'"
        f" AND (search_text LIKE '%%  ' || {_Q_LIKE} || '  %%' OR search_text LIKE '%%  ' || {_Q_LIKE}))"
    )
    exact = f"({exact_name} OR {exact_address})"
    starts = f"(search_text LIKE {_Q_LIKE} || '%%')"
    prefix = f"({starts} OR search_text LIKE '%% ' || {_Q_LIKE} || '%%')"
    # A two-letter query has no trigram: its own index finds it (exact, nothing to recheck).
    contains = (
        f"(CASE WHEN length({_Q}) = 2 THEN directory_bigrams(search_text) @> ARRAY[{_Q}]"
        f" ELSE search_text LIKE '%%' || {_Q_LIKE} || '%%' END)"
    )
    rank = f"CASE WHEN {exact} THEN {RANK_EXACT} WHEN {prefix} THEN {RANK_PREFIX} ELSE {RANK_SUBSTRING} END"
    # Within the prefix rank, names that start with q come before names with
    # a later word starting with q (and before address prefixes).
    name_start = f"CASE WHEN {starts} THEN 0 ELSE 1 END"

    def tiers(kind: str, table: str) -> str:
        # Each tier's condition takes in the better tiers' (see the docstring).
        return " UNION ".join(
            f"(SELECT '{kind}' AS kind, id FROM {table} WHERE tenant_id = %(tenant)s AND {condition}"  # noqa: S608
            " ORDER BY search_text LIMIT %(limit)s)"
            for condition in (exact, f"({starts} OR {exact_address})", f"({prefix} OR {exact_address})", contains)
        )

    held = (
        "(SELECT COUNT(*) FROM {contacts} c WHERE c.tenant_id = %(tenant)s AND c.removed_at IS NULL"
        " AND c.notification_type = %({ntype})s AND ((h.kind = 'user' AND c.directory_user_id = h.id)"
        " OR (h.kind = 'group' AND c.directory_group_id = h.id)))"
    )
    # Only table names and constant fragments are interpolated; every value is a parameter.
    sql = f"""
    WITH candidates AS ({tiers("user", users)} UNION {tiers("group", groups)}),
    hits AS (
        SELECT 'user' AS kind, u.id, u.display_name, u.mail, u.user_principal_name AS upn, u.enabled,
               TRUE AS mail_enabled, u.search_text
        FROM candidates k JOIN {users} u ON k.kind = 'user' AND u.id = k.id
        UNION ALL
        SELECT 'group', g.id, g.display_name, g.mail, '', TRUE, g.mail_enabled, g.search_text
        FROM candidates k JOIN {groups} g ON k.kind = 'group' AND g.id = k.id
    ),
    top AS (
        SELECT *, {rank} AS rank, {name_start} AS name_start FROM hits
        ORDER BY rank, name_start, search_text, kind, id LIMIT %(limit)s
    )
    SELECT h.kind, h.id, h.display_name, h.mail, h.upn, h.enabled, h.mail_enabled, h.rank,
           CASE WHEN h.kind = 'group'
                THEN (SELECT COUNT(*) FROM {members} m WHERE m.group_id = h.id) ELSE 0 END AS member_count,
           {held.format(contacts=contacts, ntype="incident")} AS is_incident,
           {held.format(contacts=contacts, ntype="service_review")} AS is_service_review
    FROM top h
    ORDER BY h.rank, h.name_start, h.search_text, h.kind, h.id
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    results = []
    for kind, pk, name, mail, upn, enabled, mail_enabled, rank_, member_count, is_inc, is_rev in rows:
        held_types: set[str] = set()
        if is_inc:
            held_types.add(NotificationType.INCIDENT.value)
        if is_rev:
            held_types.add(NotificationType.SERVICE_REVIEW.value)
        results.append(
            DirectoryResult(
                kind=kind,
                id=pk,
                display_name=name,
                mail=mail or "",
                user_principal_name=upn or "",
                enabled=bool(enabled),
                mail_enabled=bool(mail_enabled),
                member_count=int(member_count or 0),
                rank=int(rank_),
                held_types=frozenset(held_types),
            )
        )
    return results


def contacts_for_tenant(*, tenant: Tenant) -> QuerySet[NotificationContact]:
    """The tenant's current contacts in call order, with everything the page shows.

    One query (plus one for the team member previews when iterated): the
    directory rows and the welcome email come in through joins.
    """
    preview = (
        GroupMembership.objects.select_related("user")
        .annotate(
            preview_rank=Window(RowNumber(), partition_by=[F("group_id")], order_by=[F("user__display_name").asc()])
        )
        .filter(preview_rank__lte=TEAM_PREVIEW_LIMIT)
        .order_by("group_id", "user__display_name", "user_id")
    )

    def member_count(condition: Q) -> Coalesce:
        counts = (
            GroupMembership.objects.filter(condition, group_id=OuterRef("directory_group_id"))
            .order_by()
            .values("group_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))

    return (
        NotificationContact.objects.active()
        .filter(tenant=tenant)
        .select_related("directory_user", "directory_group", "welcome_message")
        # The page shows the email's status, never its rendered bodies.
        .defer("welcome_message__text_body", "welcome_message__html_body")
        .annotate(team_member_count=member_count(Q()), team_disabled_count=member_count(Q(user__enabled=False)))
        .prefetch_related(Prefetch("directory_group__groupmembership_set", queryset=preview, to_attr="preview"))
        .order_by("notification_type", "position", "id")
    )


def contacts_by_type(*, tenant: Tenant) -> dict[str, list[NotificationContact]]:
    """Contacts grouped by notification type, in the order types are listed."""
    grouped: dict[str, list[NotificationContact]] = {t.value: [] for t in NotificationType}
    for contact in contacts_for_tenant(tenant=tenant):
        grouped[contact.notification_type].append(contact)
    return grouped


def service_review_recipient_emails(*, tenant: Tenant) -> list[str]:
    """Where service review briefings go: current addresses of reachable contacts.

    Deleted or disabled users and groups that lost their mailbox are left out
    (the page flags them); a group's address is the group's own mail.
    """
    contacts = (
        NotificationContact.objects.active()
        .filter(tenant=tenant, notification_type=NotificationType.SERVICE_REVIEW)
        .select_related("directory_user", "directory_group")
        .order_by("position", "id")
    )
    emails: list[str] = []
    for contact in contacts:
        if contact.can_receive:
            address = contact.current_email.strip().lower()
            if address and address not in emails:
                emails.append(address)
    return emails


def incident_recipient_emails(*, tenant: Tenant) -> list[str]:
    """Same as above for incident contacts, in call order."""
    contacts = (
        NotificationContact.objects.active()
        .filter(tenant=tenant, notification_type=NotificationType.INCIDENT)
        .select_related("directory_user", "directory_group")
        .order_by("position", "id")
    )
    emails: list[str] = []
    for contact in contacts:
        if contact.can_receive:
            address = contact.current_email.strip().lower()
            if address and address not in emails:
                emails.append(address)
    return emails


CONTACT_AUDIT_PREFIX = "contacts."


def contact_history(*, tenant: Tenant, limit: int = 10) -> list[AuditEvent]:
    """The most recent contact changes from the audit trail (one query)."""
    return list(
        AuditEvent.objects.filter(tenant=tenant, action__startswith=CONTACT_AUDIT_PREFIX).order_by(
            "-created_at", "-id"
        )[:limit]
    )
