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
# How many word-prefix or substring matches per table are sorted to find the
# best ten (see directory_search). Beyond this many matches the ten shown are
# still all of the best rank available, just not necessarily the
# alphabetically first: the admin types more to narrow them down anyway.
CANDIDATE_POOL = 200
# How many members a team's preview lists before "and N more".
TEAM_PREVIEW_LIMIT = 25

# Ranks, best first.
RANK_EXACT = 0
RANK_PREFIX = 1
RANK_SUBSTRING = 2


# Letters that Unicode doesn't decompose into a base letter plus an accent,
# so ``normalize`` (NFKD) leaves them: "Yılmaz", "Søren", "Łukasz" in the demo
# directory. The search folds them on both sides (the query here, the stored
# ``search_text`` through ``fold_sql``, which migration 0005 indexes), so
# typing "yilmaz", "soren" or "lukasz" finds them.
FOLDS: tuple[tuple[str, str], ...] = (
    ("ı", "i"),
    ("ø", "o"),
    ("ł", "l"),
    ("đ", "d"),
    ("ð", "d"),
    ("ħ", "h"),
    ("ŧ", "t"),
    ("ŀ", "l"),
    ("ĸ", "k"),
    ("æ", "ae"),
    ("œ", "oe"),
    ("þ", "th"),
)


FOLD_PRODUCTS = frozenset("".join(plain for _letter, plain in FOLDS))


def fold_text(text: str) -> str:
    for letter, plain in FOLDS:
        text = text.replace(letter, plain)
    return text


def fold_sql(column: str) -> str:
    """``column`` with ``FOLDS`` applied, in SQL both PostgreSQL and SQLite run.

    Migration 0005 indexes exactly this expression (over ``search_text``), so
    it must stay the same here and there.
    """
    expr = column
    for letter, plain in FOLDS:
        expr = f"REPLACE({expr}, '{letter}', '{plain}')"
    return expr


def has_fold_letters(column: str) -> str:
    """SQL: ``column`` holds at least one letter of ``FOLDS``.

    On PostgreSQL this is the predicate of migration 0006's partial indexes,
    written identically so the planner uses them.
    """
    letters = "".join(letter for letter, _plain in FOLDS)
    if connection.vendor == "postgresql":
        return f"{column} ~ '[{letters}]'"
    return "(" + " OR ".join(f"INSTR({column}, '{letter}') > 0" for letter, _plain in FOLDS) + ")"


def has_fold_letters_short(column: str) -> str:
    """The same test as ``has_fold_letters``, written differently on purpose.

    Migration 0006's ``*_search_fold_rows`` index (the tenant's rows to fold,
    for queries too short for a trigram index) uses this predicate, which
    PostgreSQL can't derive from ``has_fold_letters``: so only searches that
    add it (two-letter ones) use that index, and longer ones keep using the
    trigram index of the folded text.
    """
    letters = "".join(letter for letter, _plain in reversed(FOLDS))
    return f"{column} ~ '[{letters}]'"


def normalize_query(query: str) -> str:
    """The query as ``search_text`` is stored: lower-case, accent-free, single-spaced.

    Control characters (a NUL byte, which PostgreSQL refuses in text) can't be
    in a name or address, so they are dropped rather than searched for;
    tabs and newlines count as spaces.
    """
    cleaned = "".join(ch for ch in (query or "") if ch.isprintable() or ch.isspace())
    return " ".join(fold_text(normalize(cleaned)).split())


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
    accent-free), folded further by ``fold_sql`` (ı, ø, ł, æ, ...), so case and
    accents never matter. Ranking: an exact display
    name, mail or UPN first; then a prefix (of the name first, then of any
    word of it, of the mail or of the UPN); then any substring; ties in
    alphabetical order.

    How it stays fast at 100,000 entries: for each table and each tier
    (exact, name prefix, any prefix, substring) a sub-select takes only the
    first ``limit`` matches in ``search_text`` order. Each tier's condition
    includes the better tiers, so the true top ``limit`` are always among
    these at most 8 x ``limit`` candidates (anything cut from a tier has
    ``limit`` entries at least as good ahead of it). Exact and name-prefix
    tiers are index-only range scans of the covering
    ``(tenant_id, search_text COLLATE "C") INCLUDE (id)`` b-tree; substrings
    come from a pool of at most ``CANDIDATE_POOL`` matches found through the
    pg_trgm GIN index, plus a word-prefix pool only when the substring pool
    overflows. Rows holding a letter to fold (few) are folded and ranked on
    their own, found through a partial index (migrations 0002-0006). Only the candidates are then ranked,
    and only the returned rows get their member count and "already a
    contact" subqueries. Queries shorter than two characters return nothing
    without touching the database.
    """
    q = normalize_query(query)
    if len(q) < MIN_QUERY_LENGTH:
        return []
    limit = max(1, min(int(limit), MAX_RESULTS))
    esc = _like_escape(q)
    # Sorting with the "C" collation matches the b-tree index on PostgreSQL;
    # SQLite's default (BINARY) is the same order already.
    c = ' COLLATE "C"' if connection.vendor == "postgresql" else ""

    def raw(t: str) -> str:
        # The stored search_text: what the indexes of migration 0006 cover.
        return f"{t}.search_text"

    def folded(t: str) -> str:
        # search_text with FOLDS applied; computed only for candidates and for
        # the few rows that hold a letter to fold (see special_pool).
        return fold_sql(f"{t}.search_text")

    users = DirectoryUser._meta.db_table
    groups = DirectoryGroup._meta.db_table
    members = GroupMembership._meta.db_table
    contacts = NotificationContact._meta.db_table
    params: dict[str, Any] = {
        "tenant": tenant.pk,
        "q": q,
        "starts": f"{esc}%",
        "word_starts": f"% {esc}%",
        "contains": f"%{esc}%",
        "addr_mid": f"% {esc} %",
        "addr_end": f"% {esc}",
        "limit": limit,
        "pool": CANDIDATE_POOL,
        "pool_probe": CANDIDATE_POOL + 1,
        "q_space": f"{q} ",
        "q_bang": f"{q}!",
        "rest_from": len(q) + 2,
        "incident": NotificationType.INCIDENT.value,
        "service_review": NotificationType.SERVICE_REVIEW.value,
    }
    is_address = "@" in q and " " not in q

    # Each condition below takes the text to test as an SQL expression: the
    # raw column where an index must answer, the folded text for ranking.
    #
    # search_text is directory_search_text(name, mail, upn) for users and
    # (name, mail) for groups: normalised parts joined by single spaces, empty
    # parts skipped. Addresses contain "@" and no spaces; names contain no
    # "@". So "the whole name equals q" is "search_text is q, or starts with
    # q + space and the next word is an address". Comparing against
    # search_text (never the raw columns) keeps accents and case out of the
    # exact test, and lets PostgreSQL decide it from the index alone.
    def exact_name(col: str) -> str:
        # One range, [q, q + "!") in byte order, holds q itself and every
        # "q <more>"; PostgreSQL scans just that slice of the covering index
        # and checks "the next word is an address" from the index entry.
        rest = f"SUBSTR({col}, %(rest_from)s)"
        if connection.vendor == "postgresql":
            next_is_address = f"SPLIT_PART({rest}, ' ', 1) LIKE '%%@%%'"
        else:
            next_is_address = (
                f"INSTR({rest}, '@') > 0 AND (INSTR({rest}, ' ') = 0 OR INSTR({rest}, '@') < INSTR({rest}, ' '))"
            )
        return (
            f"({col}{c} >= %(q)s AND {col}{c} < %(q_bang)s AND ({col}{c} = %(q)s"
            f" OR ({col}{c} >= %(q_space)s AND {next_is_address})))"
        )

    def exact_address(col: str) -> str:
        # A whole address: a space-delimited word after the name.
        return f"({col} LIKE %(addr_mid)s ESCAPE '\\' OR {col} LIKE %(addr_end)s ESCAPE '\\')"

    def exact(col: str) -> str:
        return f"({exact_name(col)} OR {exact_address(col)})" if is_address else exact_name(col)

    def prefix(col: str) -> str:
        return f"({col} LIKE %(starts)s ESCAPE '\\' OR {col} LIKE %(word_starts)s ESCAPE '\\')"

    def starts(col: str) -> str:
        return f"({col} LIKE %(starts)s ESCAPE '\\')"

    def rank_sql(col: str) -> str:
        return (
            f"CASE WHEN {exact(col)} THEN {RANK_EXACT} WHEN {prefix(col)} THEN {RANK_PREFIX} ELSE {RANK_SUBSTRING} END"
        )

    def name_start(col: str) -> str:
        # Within the prefix rank, names that start with q come before names
        # with a later word starting with q (and before address prefixes).
        return f"CASE WHEN {col} LIKE %(starts)s ESCAPE '\\' THEN 0 ELSE 1 END"

    def pool(table: str, t: str) -> str:
        # Up to pool + 1 substring matches: one pg_trgm index scan (or a
        # sequential scan that stops early when matches are common).
        return (
            f"SELECT {t}.id AS id, {raw(t)} AS st FROM {table} {t}"  # noqa: S608
            f" WHERE {t}.tenant_id = %(tenant)s AND {raw(t)} LIKE %(contains)s ESCAPE '\\' LIMIT %(pool_probe)s"
        )

    # An optimisation fence: SQLite only takes OFFSET after a LIMIT (-1: none).
    no_inline = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"

    # Folding only ever produces these letters. A query with none of them can
    # only match text the folding didn't touch, which the raw tiers find.
    may_need_folding = any(ch in FOLD_PRODUCTS for ch in q)

    def fold_rows(t: str) -> str:
        # The rows holding a letter to fold, spelled as the index that should
        # find them expects: the trigram index of their folded text answers
        # queries of 3 or more characters, the plain list of them shorter ones.
        if connection.vendor == "postgresql" and len(q) < 3:
            return has_fold_letters_short(raw(t))
        return has_fold_letters(raw(t))

    def special_pool(table: str, t: str) -> str:
        # Rows holding a letter to fold ("Yılmaz") can match only once folded,
        # which no index on the raw text sees. They are few (4% of a 100,000
        # directory of international names), and migration 0006 indexes just
        # them: a trigram index of their folded text, so only matching ones
        # are folded and ranked here. OFFSET 0 keeps PostgreSQL from inlining
        # the fold into every use of "ft" below (one fold per row).
        return (
            f"SELECT id FROM (SELECT {t}.id AS id, {folded(t)} AS ft FROM {table} {t}"  # noqa: S608
            f" WHERE {t}.tenant_id = %(tenant)s AND {fold_rows(t)}"
            f" AND {folded(t)} LIKE %(contains)s ESCAPE '\\' {no_inline}) AS {t}_f"
            f" ORDER BY {rank_sql('ft')}, {name_start('ft')}, ft{c} LIMIT %(limit)s"
        )

    def tiers(kind: str, table: str, t: str, pool_name: str) -> list[str]:
        base = f"FROM {table} {t} WHERE {t}.tenant_id = %(tenant)s"
        col = raw(t)
        address = (
            [
                f"SELECT kind, id FROM (SELECT '{kind}' AS kind, {t}.id AS id {base} AND {exact_address(col)}"  # noqa: S608
                f" ORDER BY {col}{c} LIMIT %(limit)s) AS {t}_address"
            ]
            if is_address
            else []
        )
        return (
            address
            + [
                # Exact and name-prefix matches: range scans of the ordered b-tree.
                f"SELECT kind, id FROM (SELECT '{kind}' AS kind, {t}.id AS id {base} AND {exact_name(col)}"  # noqa: S608
                f" ORDER BY {col}{c} LIMIT %(limit)s) AS {t}_exact",
                f"SELECT kind, id FROM (SELECT '{kind}' AS kind, {t}.id AS id {base} AND {starts(col)}"  # noqa: S608
                f" ORDER BY {col}{c} LIMIT %(limit)s) AS {t}_starts",
                # Substrings: the best of the pool. When the pool holds every
                # match (the usual case) that is exact.
                f"SELECT kind, id FROM (SELECT '{kind}' AS kind, id FROM {pool_name}"  # noqa: S608
                f" ORDER BY st{c} LIMIT %(limit)s) AS {t}_substring",
                # Only when there are more substring matches than the pool holds:
                # a pool of word-prefix matches, so a prefix match is never
                # displaced by a substring match. PostgreSQL skips this scan
                # entirely otherwise (a one-time filter).
                f"SELECT kind, id FROM (SELECT '{kind}' AS kind, id FROM (SELECT {t}.id AS id, {col} AS st"  # noqa: S608
                f" {base} AND (SELECT COUNT(*) FROM {pool_name}) > %(pool)s AND {prefix(col)} LIMIT %(pool)s) AS {t}_pp"
                f" ORDER BY st{c} LIMIT %(limit)s) AS {t}_prefix",
            ]
            + (
                # The rows that match only once their letters are folded.
                [f"SELECT '{kind}' AS kind, id FROM ({special_pool(table, t)}) AS {t}_special"]  # noqa: S608
                if may_need_folding
                else []
            )
        )

    candidates = " UNION ".join(tiers("user", users, "u", "user_pool") + tiers("group", groups, "g", "group_pool"))

    held_sql = (
        "(SELECT COUNT(*) FROM {contacts} c WHERE c.tenant_id = %(tenant)s AND c.removed_at IS NULL"
        " AND c.notification_type = %({ntype})s AND ((h.kind = 'user' AND c.directory_user_id = h.id)"
        " OR (h.kind = 'group' AND c.directory_group_id = h.id)))"
    )
    # Only table names and constant fragments are interpolated; every value is a parameter.
    sql = f"""
    WITH user_pool AS ({pool(users, "u")}),
    group_pool AS ({pool(groups, "g")}),
    candidates AS ({candidates}),
    hits AS (
        SELECT 'user' AS kind, u.id AS id, u.display_name AS display_name, u.mail AS mail,
               u.user_principal_name AS upn, CASE WHEN u.enabled THEN 1 ELSE 0 END AS enabled,
               1 AS mail_enabled, {rank_sql(folded("u"))} AS rank, {name_start(folded("u"))} AS name_start,
               {folded("u")} AS sort_key
        FROM candidates k JOIN {users} u ON k.kind = 'user' AND u.id = k.id
        UNION ALL
        SELECT 'group', g.id, g.display_name, g.mail, '', 1, CASE WHEN g.mail_enabled THEN 1 ELSE 0 END,
               {rank_sql(folded("g"))}, {name_start(folded("g"))}, {folded("g")}
        FROM candidates k JOIN {groups} g ON k.kind = 'group' AND g.id = k.id
    ),
    top AS (
        SELECT * FROM hits ORDER BY rank, name_start, sort_key{c}, kind, id LIMIT %(limit)s
    )
    SELECT h.kind, h.id, h.display_name, h.mail, h.upn, h.enabled, h.mail_enabled, h.rank,
           CASE WHEN h.kind = 'group'
                THEN (SELECT COUNT(*) FROM {members} m WHERE m.group_id = h.id) ELSE 0 END AS member_count,
           {held_sql.format(contacts=contacts, ntype="incident")} AS is_incident,
           {held_sql.format(contacts=contacts, ntype="service_review")} AS is_service_review
    FROM top h
    ORDER BY h.rank, h.name_start, h.sort_key{c}, h.kind, h.id
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    results = []
    for kind, pk, name, mail, upn, enabled, mail_enabled, rank, member_count, is_inc, is_rev in rows:
        held: set[str] = set()
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
