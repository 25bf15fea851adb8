"""Reads for notification contacts and the directory search that feeds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, Window
from django.db.models.functions import Coalesce, RowNumber

from audit.models import AuditEvent
from contacts.models import EntryKind, NotificationContact, NotificationType
from environment.models import DirectoryGroup, DirectoryUser, GroupMembership
from environment.search import normalize
from tenancy.models import Tenant

MIN_QUERY_LENGTH = 2
MAX_RESULTS = 10
# How many members a team's preview lists before "and N more".
TEAM_PREVIEW_LIMIT = 25

# Ranks, best first.
RANK_EXACT = 0
RANK_PREFIX = 1
RANK_SUBSTRING = 2


def normalize_query(query: str) -> str:
    """The query as ``search_text`` is stored: lower-case, accent-free, single-spaced."""
    return " ".join(normalize(query or "").split())


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
        if self.kind == EntryKind.GROUP:
            if not self.mail_enabled or not self.mail:
                return "This group can't receive email"
            return ""
        if not self.enabled:
            return "This user is disabled"
        if not self.mail:
            return "This user has no email address"
        return ""

    @property
    def can_add(self) -> bool:
        return not self.refusal

    def holds(self, notification_type: str) -> bool:
        return notification_type in self.held_types


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def directory_search(*, tenant: Tenant, query: str, limit: int = MAX_RESULTS) -> list[DirectoryResult]:
    """Users and groups of the tenant matching ``query``, best first, in ONE query.

    Matching is on the normalised ``search_text`` ("name mail upn", lower-case,
    accent-free), so case and accents never matter. Ranking: an exact display
    name, mail or UPN first; then a prefix of the name, of any word of it, of
    the mail or of the UPN; then any substring. On PostgreSQL the substring
    ``LIKE`` is answered by the pg_trgm GIN indexes (migration 0002).

    The ranked, limited hits are computed first (a CTE) so the member-count and
    "already a contact" subqueries only run for the few rows returned.
    Queries shorter than two characters return nothing without touching the DB.
    """
    q = normalize_query(query)
    if len(q) < MIN_QUERY_LENGTH:
        return []
    limit = max(1, min(int(limit), MAX_RESULTS))
    esc = _like_escape(q)
    contains = f"%{esc}%"
    starts = f"{esc}%"
    word_starts = f"% {esc}%"
    users = DirectoryUser._meta.db_table
    groups = DirectoryGroup._meta.db_table
    members = GroupMembership._meta.db_table
    contacts = NotificationContact._meta.db_table
    # search_text is directory_search_text(name, mail, upn) for users and
    # (name, mail) for groups: normalised parts joined by single spaces, empty
    # parts skipped. Addresses contain no spaces, so "the whole name equals q"
    # is "search_text is q, or q plus a space plus exactly as many space-free
    # words as the entry has addresses". Comparing against search_text (never
    # the raw columns) keeps accents and case out of the exact test too.
    spaces = "(LENGTH({t}.search_text) - LENGTH(REPLACE({t}.search_text, ' ', '')))"
    user_parts = "(CASE WHEN u.mail <> '' THEN 1 ELSE 0 END + CASE WHEN u.user_principal_name <> '' THEN 1 ELSE 0 END)"
    group_parts = "(CASE WHEN g.mail <> '' THEN 1 ELSE 0 END)"
    name_then_space = f"{esc} %"
    q_spaces = q.count(" ")

    def exact(t: str, parts: str) -> tuple[str, list[Any]]:
        clause = (
            f"{t}.search_text = %s OR ({t}.search_text LIKE %s ESCAPE '\\' AND {spaces.format(t=t)} - %s = {parts})"
        )
        params: list[Any] = [q, name_then_space, q_spaces]
        if "@" in q and " " not in q:
            # A whole address: a space-delimited word after the name.
            clause += f" OR {t}.search_text LIKE %s ESCAPE '\\' OR {t}.search_text LIKE %s ESCAPE '\\'"
            params += [f"% {esc} %", f"% {esc}"]
        return clause, params

    user_exact, user_exact_params = exact("u", user_parts)
    group_exact, group_exact_params = exact("g", group_parts)
    # Only table names and constant fragments are interpolated; every value is a parameter.
    sql = f"""
    WITH hits AS (
        SELECT 'user' AS kind, u.id AS id, u.display_name AS display_name, u.mail AS mail,
               u.user_principal_name AS upn,
               CASE WHEN u.enabled THEN 1 ELSE 0 END AS enabled, 1 AS mail_enabled,
               CASE
                 WHEN {user_exact} THEN {RANK_EXACT}
                 WHEN u.search_text LIKE %s ESCAPE '\\' OR u.search_text LIKE %s ESCAPE '\\' THEN {RANK_PREFIX}
                 ELSE {RANK_SUBSTRING}
               END AS rank,
               u.search_text AS sort_key
        FROM {users} u
        WHERE u.tenant_id = %s AND u.search_text LIKE %s ESCAPE '\\'
        UNION ALL
        SELECT 'group', g.id, g.display_name, g.mail, '',
               1, CASE WHEN g.mail_enabled THEN 1 ELSE 0 END,
               CASE
                 WHEN {group_exact} THEN {RANK_EXACT}
                 WHEN g.search_text LIKE %s ESCAPE '\\' OR g.search_text LIKE %s ESCAPE '\\' THEN {RANK_PREFIX}
                 ELSE {RANK_SUBSTRING}
               END,
               g.search_text
        FROM {groups} g
        WHERE g.tenant_id = %s AND g.search_text LIKE %s ESCAPE '\\'
        ORDER BY rank, sort_key, kind, id
        LIMIT %s
    )
    SELECT h.kind, h.id, h.display_name, h.mail, h.upn, h.enabled, h.mail_enabled, h.rank,
           CASE WHEN h.kind = 'group'
                THEN (SELECT COUNT(*) FROM {members} m WHERE m.group_id = h.id) ELSE 0 END AS member_count,
           (SELECT COUNT(*) FROM {contacts} c
             WHERE c.tenant_id = %s AND c.removed_at IS NULL AND c.notification_type = %s
               AND ((h.kind = 'user' AND c.directory_user_id = h.id)
                    OR (h.kind = 'group' AND c.directory_group_id = h.id))) AS is_incident,
           (SELECT COUNT(*) FROM {contacts} c
             WHERE c.tenant_id = %s AND c.removed_at IS NULL AND c.notification_type = %s
               AND ((h.kind = 'user' AND c.directory_user_id = h.id)
                    OR (h.kind = 'group' AND c.directory_group_id = h.id))) AS is_service_review
    FROM hits h
    ORDER BY h.rank, h.sort_key, h.kind, h.id
    """  # noqa: S608
    params: list[Any] = [
        *user_exact_params, starts, word_starts, tenant.pk, contains,
        *group_exact_params, starts, word_starts, tenant.pk, contains,
        limit,
        tenant.pk, NotificationType.INCIDENT.value,
        tenant.pk, NotificationType.SERVICE_REVIEW.value,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    results = []
    for kind, pk, name, mail, upn, enabled, mail_enabled, rank, member_count, is_inc, is_rev in rows:
        held = set()
        if is_inc:
            held.add(NotificationType.INCIDENT.value)
        if is_rev:
            held.add(NotificationType.SERVICE_REVIEW.value)
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
                rank=int(rank),
                held_types=frozenset(held),
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
