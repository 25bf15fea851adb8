"""Reads for notification contacts and the directory search that feeds them."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Count, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, Window
from django.db.models.functions import Coalesce, RowNumber
from django.urls import reverse

from audit.selectors import recent_events
from contacts.models import (
    NOTIFICATION_TYPE_HELP,
    DirectoryState,
    EntryKind,
    NotificationContact,
    NotificationType,
    directory_entry_state,
)
from contacts.phones import phone_display
from environment.models import DirectoryGroup, DirectoryUser, GroupMembership
from tenancy.models import ServicePhase, Tenant

if TYPE_CHECKING:
    from audit.models import AuditEvent

MIN_QUERY_LENGTH = 2
MAX_RESULTS = 10
# How many word-prefix or substring matches are sorted to find the best ten
# of their rank (see directory_search). Beyond this many matches the ten shown
# are still all of the best rank available, just not necessarily the
# alphabetically first: the admin types more to narrow them down anyway.
CANDIDATE_POOL = 200
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

    How it stays fast at 100,000 entries: the four ranks (exact, name prefix,
    word prefix, substring) are four tiers, taken best first, and a tier is
    only read while the better ones hold fewer than ``limit`` rows (a one-time
    filter: PostgreSQL doesn't touch its index otherwise). Exact names and
    name prefixes are ranges of the ``(tenant, search_text)`` b-tree, read in
    order. Word prefixes and substrings come from a pool of at most
    ``CANDIDATE_POOL`` matches per table, found through pg_trgm's GIN index
    (three letters or more, and word starts) or the two-letter index of
    ``directory_bigrams`` (see ``environment/models.py``), then sorted. Only
    the returned rows get their member count and "already a contact"
    subqueries. Queries shorter than two characters return nothing without
    touching the database.
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
        "pool": CANDIDATE_POOL,
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
    starts = f"(search_text LIKE {_Q_LIKE} || '%%')"
    word_starts = f"(search_text LIKE '%% ' || {_Q_LIKE} || '%%')"
    # A two-letter query has no trigram: its own index finds it (exact, nothing to recheck).
    contains = (
        f"(CASE WHEN length({_Q}) = 2 THEN directory_bigrams(search_text) @> ARRAY[{_Q}]"
        f" ELSE search_text LIKE '%%' || {_Q_LIKE} || '%%' END)"
    )
    # Each tier holds exactly one rank, so they never overlap: (rank, name_start, condition, pool condition).
    # A pooled tier gathers matches of the simple condition (which the GIN
    # indexes answer, and which the planner estimates well), then keeps those
    # of its rank. It only runs when the better tiers hold fewer than ``limit``
    # rows, so at most that many of the pool's rows belong to them.
    tiers = [
        (RANK_EXACT, 0, f"({exact_name} OR {exact_address})", None),
        (RANK_PREFIX, 0, f"({starts} AND NOT {exact_name} AND NOT {exact_address})", None),
        (RANK_PREFIX, 1, f"(NOT {starts} AND NOT {exact_address})", word_starts),
        (RANK_SUBSTRING, 1, f"(NOT {word_starts} AND NOT {starts} AND NOT {exact_address})", contains),
    ]

    def tier(number: int, table: str, kind: str) -> str:
        rank, name_start, condition, pool = tiers[number]
        better = " + ".join(f"(SELECT COUNT(*) FROM tier{n})" for n in range(number)) or "0"  # noqa: S608
        columns = f"{rank} AS rank, {name_start} AS name_start, '{kind}' AS kind, id, search_text"
        where = f"tenant_id = %(tenant)s AND {better} < %(limit)s"
        if pool:
            # Any CANDIDATE_POOL matches through the GIN index; the first of this rank in order.
            return (
                f"SELECT {columns} FROM (SELECT id, search_text FROM {table} WHERE {where} AND {pool}"  # noqa: S608
                f" LIMIT %(pool)s) AS pool WHERE {condition} ORDER BY search_text LIMIT %(limit)s"
            )
        # A range of the b-tree, read in order: the first ``limit`` are the first.
        return f"SELECT {columns} FROM {table} WHERE {where} AND {condition} ORDER BY search_text LIMIT %(limit)s"  # noqa: S608

    ctes = ",\n".join(
        f"tier{n} AS MATERIALIZED (SELECT * FROM (({tier(n, users, 'user')}) UNION ALL"  # noqa: S608
        f" ({tier(n, groups, 'group')})) AS t ORDER BY search_text LIMIT %(limit)s)"
        for n in range(len(tiers))
    )
    held = (
        "(SELECT COUNT(*) FROM {contacts} c WHERE c.tenant_id = %(tenant)s AND c.removed_at IS NULL"
        " AND c.notification_type = %({ntype})s AND ((h.kind = 'user' AND c.directory_user_id = h.id)"
        " OR (h.kind = 'group' AND c.directory_group_id = h.id)))"
    )
    # Only table names and constant fragments are interpolated; every value is a parameter.
    # Only table names and constant fragments are interpolated; every value is a parameter.
    sql = f"""
    WITH {ctes},
    top AS (
        SELECT * FROM (
            SELECT * FROM tier0 UNION ALL SELECT * FROM tier1 UNION ALL SELECT * FROM tier2
            UNION ALL SELECT * FROM tier3
        ) AS tiers
        ORDER BY rank, name_start, search_text, kind, id LIMIT %(limit)s
    ),
    hits AS (
        SELECT t.rank, t.name_start, t.kind, t.id, t.search_text, u.display_name, u.mail,
               u.user_principal_name AS upn, u.enabled, TRUE AS mail_enabled
        FROM top t JOIN {users} u ON t.kind = 'user' AND u.id = t.id
        UNION ALL
        SELECT t.rank, t.name_start, t.kind, t.id, t.search_text, g.display_name, g.mail, '', TRUE, g.mail_enabled
        FROM top t JOIN {groups} g ON t.kind = 'group' AND g.id = t.id
    )
    SELECT h.kind, h.id, h.display_name, h.mail, h.upn, h.enabled, h.mail_enabled, h.rank,
           CASE WHEN h.kind = 'group'
                THEN (SELECT COUNT(*) FROM {members} m WHERE m.group_id = h.id) ELSE 0 END AS member_count,
           {held.format(contacts=contacts, ntype="incident")} AS is_incident,
           {held.format(contacts=contacts, ntype="service_review")} AS is_service_review
    FROM hits h
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
    return recent_events(tenant=tenant, action_prefix=CONTACT_AUDIT_PREFIX, limit=limit)


def notification_type_text(notification_type: str) -> tuple[str, str]:
    """A notification type's label and what it is for, in the seed's words (for pages of other apps)."""
    return NotificationType(notification_type).label, NOTIFICATION_TYPE_HELP[notification_type]


# Once the experts are watching (Monitoring) or the service runs (Active), someone
# must always be reachable for an incident: removing the last one is refused.
PHASES_NEEDING_AN_INCIDENT_CONTACT = frozenset({ServicePhase.MONITORING, ServicePhase.ACTIVE})
ADD_ANCHOR = "#add-heading"


@dataclass(frozen=True)
class RemovalCheck:
    """What removing a contact would do to who can be notified of incidents.

    ``refusal`` (the removal isn't allowed, and why) or ``consequence`` (what
    the admin must confirm), or neither for an ordinary removal.
    """

    refusal: str = ""
    consequence: str = ""
    add_url: str = ""

    @property
    def is_last(self) -> bool:
        return bool(self.refusal or self.consequence)


def contact_removal_check(*, tenant: Tenant, contact: NotificationContact) -> RemovalCheck:
    """The rule for removing the last incident contact who can receive notifications (one query).

    Only a contact who can receive notifications counts (``directory_entry_state``,
    through ``can_receive``): removing one that can't changes nobody's reach.
    The confirmation page and ``contact_remove`` both ask this, so what the
    page says is what the service does.
    """
    if contact.notification_type != NotificationType.INCIDENT or not contact.can_receive:
        return RemovalCheck()
    others = (
        NotificationContact.objects.active()
        .filter(tenant=tenant, notification_type=NotificationType.INCIDENT)
        .exclude(pk=contact.pk)
        .select_related("directory_user", "directory_group")
    )
    if any(other.can_receive for other in others):
        return RemovalCheck()
    # A URL of its own (not just an anchor), so the link leaves the dialog for the
    # Add form, with Incident contact already chosen.
    add_url = reverse("contacts:index") + "?notification_type=incident" + ADD_ANCHOR
    name = contact.display_name
    if tenant.service_phase in PHASES_NEEDING_AN_INCIDENT_CONTACT:
        phase = ServicePhase(tenant.service_phase).label
        return RemovalCheck(
            refusal=(
                f"{name} can't be removed: they're your last incident contact who can receive notifications, "
                f"and in the {phase} phase our experts must always have someone to notify for managed response "
                f"actions. Add another incident contact first, then remove {name}."
            ),
            add_url=add_url,
        )
    return RemovalCheck(
        consequence=(
            f"{name} is your last incident contact who can receive notifications. Once removed, our experts will "
            "have nobody to notify for managed response actions or any communication that requires a prompt "
            "response until you add another incident contact."
        ),
        add_url=add_url,
    )


@dataclass(frozen=True)
class DirectoryChoice:
    """The entry the admin chose in the picker, to show it again ("Selected: ...")."""

    value: str
    display_name: str
    kind_label: str


def directory_choice(*, tenant: Tenant, value: str) -> DirectoryChoice | None:
    """The tenant's directory entry named by a picker value ("user:12", "group:7"), or None (one query)."""
    kind, _, raw_pk = (value or "").partition(":")
    pk = int(raw_pk) if raw_pk.isdigit() and len(raw_pk) < 19 else None
    if pk is None:
        return None
    if kind == EntryKind.USER:
        name = DirectoryUser.objects.filter(tenant=tenant, pk=pk).values_list("display_name", flat=True).first()
    elif kind == EntryKind.GROUP:
        name = DirectoryGroup.objects.filter(tenant=tenant, pk=pk).values_list("display_name", flat=True).first()
    else:
        return None
    if name is None:
        return None
    return DirectoryChoice(value=f"{kind}:{pk}", display_name=name, kind_label=EntryKind(kind).label)


@dataclass(frozen=True)
class ContactRow:
    """One contact on the page, with the neighbours its move buttons name.

    The move form says which contact the admin saw above/below, so a stale
    move is detected, never misapplied. ``phone_value`` and ``phone_error``
    are what the phone field shows (the number as typed after a refusal).
    """

    contact: NotificationContact
    prev_id: int | None
    next_id: int | None
    phone_value: str
    phone_error: str = ""


@dataclass(frozen=True)
class ContactSection:
    value: str
    label: str
    help: str
    is_incident: bool
    rows: list[ContactRow]


@dataclass(frozen=True)
class ContactsPage:
    sections: list[ContactSection]
    flagged: list[NotificationContact]
    history: list[AuditEvent]
    no_incident_contact: bool
    # Contacts stay listed when their directory entry goes away; if that
    # leaves nobody reachable, the page says so as plainly as having nobody.
    no_reachable_incident_contact: bool
    no_incident_phone: bool


def contacts_page(*, tenant: Tenant) -> ContactsPage:
    """Everything the contacts page shows, in a fixed number of queries whatever the data size:
    contacts with their directory rows and welcome emails (1), team member
    previews (1, only when a team is listed) and the recent history (1)."""
    grouped = contacts_by_type(tenant=tenant)
    sections = []
    for t in NotificationType:
        contacts = grouped[t.value]
        rows = [
            ContactRow(
                contact=c,
                prev_id=contacts[i - 1].pk if i > 0 else None,
                next_id=contacts[i + 1].pk if i + 1 < len(contacts) else None,
                phone_value=phone_display(c.phone),
            )
            for i, c in enumerate(contacts)
        ]
        sections.append(
            ContactSection(
                value=t.value,
                label=str(t.label),
                help=NOTIFICATION_TYPE_HELP[t.value],
                is_incident=t == NotificationType.INCIDENT,
                rows=rows,
            )
        )
    incident = grouped[NotificationType.INCIDENT.value]
    return ContactsPage(
        sections=sections,
        flagged=[c for contacts in grouped.values() for c in contacts if not c.can_receive],
        history=contact_history(tenant=tenant),
        no_incident_contact=not incident,
        no_reachable_incident_contact=bool(incident) and not any(c.can_receive for c in incident),
        no_incident_phone=bool(incident) and not any(c.phone for c in incident),
    )


@dataclass(frozen=True)
class PickerState:
    """What the picker's Add form shows: the admin's own choices and input, and
    each refusal next to the field it is about (``errors``), or ``error`` when
    it is about none of them. Empty for a fresh form."""

    q: str = ""
    entry: str = ""
    choice: DirectoryChoice | None = None
    notification_type: str = ""
    phone: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""

    @property
    def entry_error(self) -> str:
        return " ".join(self.errors.get("entry", []))

    @property
    def type_error(self) -> str:
        return " ".join(self.errors.get("notification_type", []))

    @property
    def phone_error(self) -> str:
        return " ".join(self.errors.get("phone", []))


def picker_state(
    *,
    tenant: Tenant,
    q: str = "",
    entry: str = "",
    notification_type: str = "",
    phone: str = "",
    errors: dict[str, list[str]] | None = None,
    error: str = "",
) -> PickerState:
    """The picker as the admin left it, the chosen entry looked up again in the tenant's directory."""
    fields = {k: v for k, v in (errors or {}).items() if k in ("entry", "notification_type", "phone")}
    # A refusal about a field the form doesn't show (or none) is shown once, above the form.
    rest = " ".join(m for k, msgs in (errors or {}).items() if k not in fields for m in msgs)
    return PickerState(
        q=q[:200],
        entry=entry,
        choice=directory_choice(tenant=tenant, value=entry) if entry else None,
        notification_type=notification_type if notification_type in NotificationType.values else "",
        phone=phone[:64],
        errors=fields,
        error=" ".join(x for x in (error, rest) if x),
    )
