"""Reads of a tenant's emulated Microsoft environment.

Every selector runs a fixed number of queries whatever the size of the
environment: counts are SQL aggregates (GROUP BY / filtered COUNT), lists are
querysets the caller paginates.

Definitions shared with readiness (see the team brief):

* a device is *protected* when it is onboarded AND its antivirus mode is active;
* an *identity* is an enabled directory user with a domain controller; it is
  *protected* when that domain controller has a sensor installed;
* the device target is the seats of ``mde_p2``; the identity target the seats of ``mdi``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from audit.selectors import events_since
from environment.models import (
    AntivirusMode,
    Device,
    DeviceGroup,
    DeviceTally,
    DirectoryGroup,
    DirectoryUser,
    DomainController,
    GroupMembership,
    Licence,
    LicenceProduct,
    OnboardingState,
    SecuritySetting,
)
from environment.search import Fold
from environment.security_settings import SETTINGS, SettingSpec
from tenancy.bounds import parse_id
from tenancy.models import Tenant

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

ONBOARDING_FILTERS = {OnboardingState.ONBOARDED.value, OnboardingState.NOT_ONBOARDED.value}
AV_FILTERS = set(AntivirusMode.values)


# --- Devices ---------------------------------------------------------------------------------


@dataclass
class GroupDeviceCounts:
    id: int | None
    name: str
    total: int = 0
    onboarded: int = 0
    protected: int = 0
    active: int = 0
    passive: int = 0
    disabled: int = 0

    @property
    def not_onboarded(self) -> int:
        return self.total - self.onboarded

    @property
    def version(self) -> str:
        """The devices' state as the page read it, carried by the device list's bulk actions."""
        return device_state_version(
            total=self.total, onboarded=self.onboarded, active=self.active, passive=self.passive, disabled=self.disabled
        )

    @property
    def onboarded_percent(self) -> int:
        return round(100 * self.onboarded / self.total) if self.total else 0


@dataclass(frozen=True)
class TallyCell:
    """The devices of one (group, onboarding state, antivirus mode); ``group_id`` None: ungrouped."""

    group_id: int | None
    onboarding_state: str
    av_mode: str
    devices: int


def device_state_version(*, total: int, onboarded: int, active: int, passive: int, disabled: int) -> str:
    """A tenant's device states in one word: any onboarding or antivirus change (or a device added) changes it."""
    return f"{total}.{onboarded}.{active}.{passive}.{disabled}"


@dataclass
class DeviceCounts:
    total: int = 0
    onboarded: int = 0
    protected: int = 0
    active: int = 0
    passive: int = 0
    disabled: int = 0
    # Among onboarded devices: what keeps them from being protected.
    onboarded_passive: int = 0
    onboarded_disabled: int = 0
    groups: list[GroupDeviceCounts] = field(default_factory=list)
    cells: list[TallyCell] = field(default_factory=list)

    @property
    def not_onboarded(self) -> int:
        return self.total - self.onboarded

    @property
    def version(self) -> str:
        """The devices' state as the page read it, carried by the device list's bulk actions."""
        return device_state_version(
            total=self.total, onboarded=self.onboarded, active=self.active, passive=self.passive, disabled=self.disabled
        )

    @property
    def onboarded_percent(self) -> int:
        return round(100 * self.onboarded / self.total) if self.total else 0

    def matching(self, *, group_id: int | None = None, onboarding: str = "", av: str = "") -> int:
        """The devices matching the device list's group, onboarding and antivirus filters (no name search)."""
        return sum(
            c.devices
            for c in self.cells
            if (not group_id or c.group_id == group_id)
            and (not onboarding or c.onboarding_state == onboarding)
            and (not av or c.av_mode == av)
        )

    @property
    def protected_percent(self) -> int:
        return round(100 * self.protected / self.total) if self.total else 0


def device_counts(*, tenant: Tenant) -> DeviceCounts:
    """Device counts by onboarding state, AV mode and group: ONE query of the tally.

    The counts come from ``DeviceTally`` (at most groups x 2 states x 3 modes rows, kept by triggers
    in the transaction of every device change), so the cost doesn't grow with the number of devices.
    Device groups without devices are not listed (see ``device_groups`` for all of them).
    """
    groups = DeviceGroup.objects.filter(pk=OuterRef("group_key"))
    rows = (
        DeviceTally.objects.filter(tenant=tenant, devices__gt=0)
        .with_protection()
        .annotate(
            group_name=Subquery(groups.values("name")[:1]),
            group_rank=Subquery(groups.values("rank")[:1]),
        )
        .values("group_key", "group_name", "group_rank", "onboarding_state", "av_mode", "devices", "is_protected")
    )
    counts = DeviceCounts()
    by_group: dict[int | None, GroupDeviceCounts] = {}
    ranks: dict[int | None, tuple[int, str]] = {}
    for row in rows:
        gid = row["group_key"] or None
        group = by_group.get(gid)
        if group is None:
            group = by_group[gid] = GroupDeviceCounts(id=gid, name=row["group_name"] or "Ungrouped devices")
            ranks[gid] = (row["group_rank"] if gid is not None else 1 << 30, group.name)
        n = row["devices"]
        onboarded = row["onboarding_state"] == OnboardingState.ONBOARDED
        mode = row["av_mode"]
        counts.cells.append(TallyCell(group_id=gid, onboarding_state=row["onboarding_state"], av_mode=mode, devices=n))
        for target in (counts, group):
            target.total += n
            setattr(target, mode, getattr(target, mode) + n)
            if onboarded:
                target.onboarded += n
            if row["is_protected"]:  # the environment's one definition (environment/models.py)
                target.protected += n
        if onboarded and mode == AntivirusMode.PASSIVE:
            counts.onboarded_passive += n
        if onboarded and mode == AntivirusMode.DISABLED:
            counts.onboarded_disabled += n
    counts.groups = sorted(by_group.values(), key=lambda g: ranks[g.id])
    return counts


def device_groups(*, tenant: Tenant) -> QuerySet[DeviceGroup]:
    return DeviceGroup.objects.filter(tenant=tenant).order_by("rank", "name")


@dataclass(frozen=True)
class DeviceFilters:
    group_id: int | None = None
    onboarding: str = ""
    av: str = ""
    q: str = ""

    @property
    def active(self) -> bool:
        return bool(self.group_id or self.onboarding or self.av or self.q)

    def as_query(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.group_id:
            params["group"] = self.group_id
        if self.onboarding:
            params["onboarding"] = self.onboarding
        if self.av:
            params["av"] = self.av
        if self.q:
            params["q"] = self.q
        return params


def parse_device_filters(params: Any) -> DeviceFilters:
    """Read the device list's GET filters; unknown values are ignored, never a 500."""
    raw_group = (params.get("group") or "").strip()
    group_id = parse_id(raw_group)
    onboarding = params.get("onboarding") or ""
    av = params.get("av") or ""
    return DeviceFilters(
        group_id=group_id,
        onboarding=onboarding if onboarding in ONBOARDING_FILTERS else "",
        av=av if av in AV_FILTERS else "",
        q=(params.get("q") or "").strip()[:100],
    )


def device_list(*, tenant: Tenant, filters: DeviceFilters) -> QuerySet[Device]:
    """The tenant's devices matching the filters, name order, with their group (no N+1)."""
    qs = Device.objects.filter(tenant=tenant).select_related("device_group")
    if filters.group_id:
        qs = qs.filter(device_group_id=filters.group_id)
    if filters.onboarding:
        qs = qs.filter(onboarding_state=filters.onboarding)
    if filters.av:
        qs = qs.filter(av_mode=filters.av)
    if filters.q:
        qs = qs.filter(name__icontains=filters.q)
    return qs.order_by("name", "id")


# A name search can't be counted from the tally; it is counted up to this many, then shown as "more than".
SEARCH_COUNT_LIMIT = 10_000


def device_matching(*, tenant: Tenant, filters: DeviceFilters, counts: DeviceCounts) -> tuple[int, bool]:
    """How many devices match the filters, and whether that is a lower bound.

    Group, onboarding and antivirus filters are answered from the tally already read for the page;
    a name search is counted with a LIMIT (``SEARCH_COUNT_LIMIT``), so no view counts every device.
    """
    if not filters.q:
        return counts.matching(group_id=filters.group_id, onboarding=filters.onboarding, av=filters.av), False
    found = device_list(tenant=tenant, filters=filters).order_by()[: SEARCH_COUNT_LIMIT + 1].count()
    return min(found, SEARCH_COUNT_LIMIT), found > SEARCH_COUNT_LIMIT


@dataclass(frozen=True)
class PageCount:
    """What templates ask a Django paginator for: ``count`` and ``num_pages``."""

    count: int
    num_pages: int


@dataclass
class DevicePage:
    """One page of a device list, found from the name at its edge (keyset): no OFFSET, no COUNT.

    Device names are unique per tenant, so the name alone orders and resumes the list; the
    ``device_unique_name`` index (tenant, name) finds a page in the same time wherever it is.
    ``number`` is the page's position for display, carried in the links. It answers what
    templates ask of Django's ``Page`` (``paginator.count``, ``paginator.num_pages``, ...).
    """

    object_list: list[Device]
    number: int
    num_pages: int
    has_previous: bool
    has_next: bool
    count: int = 0

    @property
    def paginator(self) -> PageCount:
        return PageCount(count=self.count, num_pages=self.num_pages)

    @property
    def first_name(self) -> str | None:
        return self.object_list[0].name if self.object_list else None

    @property
    def last_name(self) -> str | None:
        return self.object_list[-1].name if self.object_list else None

    @property
    def previous_page_number(self) -> int:
        return max(self.number - 1, 1)

    @property
    def next_page_number(self) -> int:
        return min(self.number + 1, self.num_pages)

    def previous_query(self, **params: Any) -> dict[str, Any]:
        return {**params, "before": self.first_name, "page": self.previous_page_number}

    def next_query(self, **params: Any) -> dict[str, Any]:
        return {**params, "after": self.last_name, "page": self.next_page_number}


def _page_number(raw: Any) -> int:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else 1


def keyset_page(
    qs: QuerySet[Device], *, matching: int, per_page: int, after: str = "", before: str = "", number: Any = 1
) -> DevicePage:
    """The devices of ``qs`` after the one named ``after``, before the one named ``before``, or the first ones."""
    after, before = str(after or "")[:128], str(before or "")[:128]
    num_pages = max(1, -(-matching // per_page))
    if before:
        rows = list(qs.filter(name__lt=before).order_by("-name")[: per_page + 1])
        has_previous = len(rows) > per_page
        rows = rows[:per_page][::-1]
        has_next = True
    else:
        if after:
            qs = qs.filter(name__gt=after)
        rows = list(qs.order_by("name")[: per_page + 1])
        has_previous = bool(after)
        has_next = len(rows) > per_page
        rows = rows[:per_page]
    position = _page_number(number)
    if not has_previous:
        position = 1
    elif not has_next:
        position = num_pages
    position = min(max(position, 2 if has_previous else 1), num_pages)
    return DevicePage(
        object_list=rows,
        number=position,
        num_pages=num_pages,
        has_previous=has_previous,
        has_next=has_next,
        count=matching,
    )


def device_page(
    *,
    tenant: Tenant,
    filters: DeviceFilters,
    matching: int,
    per_page: int,
    after: str = "",
    before: str = "",
    number: Any = 1,
) -> DevicePage:
    """The device list's page after the device named ``after``, before the one named ``before``, or the first."""
    return keyset_page(
        device_list(tenant=tenant, filters=filters),
        matching=matching,
        per_page=per_page,
        after=after,
        before=before,
        number=number,
    )


# --- Defender for Identity -----------------------------------------------------------------


def domain_controller_choices(*, tenant: Tenant) -> list[tuple[str, str]]:
    """The tenant's domain controllers as form choices (id, name), by name: one query."""
    return [
        (str(pk), name)
        for pk, name in DomainController.objects.filter(tenant=tenant).order_by("name").values_list("pk", "name")
    ]


class IdentityCountAnnotation(TypedDict):
    identity_count: int


def domain_controllers_with_identities(
    *, tenant: Tenant
) -> QuerySet[WithAnnotations[DomainController, IdentityCountAnnotation]]:
    """Domain controllers annotated with the identities (enabled users) they cover: one query."""
    return (
        DomainController.objects.filter(tenant=tenant)
        .annotate(
            identity_count=Count("identities", filter=Q(identities__enabled=True)),
            disabled_account_count=Count("identities", filter=Q(identities__enabled=False)),
        )
        .order_by("name")
    )


@dataclass(frozen=True)
class IdentityCounts:
    users: int
    enabled_users: int
    identities: int
    protected: int

    @property
    def unprotected(self) -> int:
        return self.identities - self.protected

    @property
    def protected_percent(self) -> int:
        return round(100 * self.protected / self.identities) if self.identities else 0


def identity_counts(*, tenant: Tenant) -> IdentityCounts:
    """Directory users, identities and protected identities: one aggregate query."""
    hybrid = Q(enabled=True, domain_controller__isnull=False)
    row = DirectoryUser.objects.filter(tenant=tenant).aggregate(
        users=Count("id"),
        enabled_users=Count("id", filter=Q(enabled=True)),
        identities=Count("id", filter=hybrid),
        protected=Count("id", filter=hybrid & Q(domain_controller__sensor_installed=True)),
    )
    return IdentityCounts(**row)


# --- Licences ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LicenceUsage:
    product: str
    label: str
    seats: int
    # What the seats cover, and how many of those there are (None: not measured).
    used: int | None
    used_label: str
    updated_at: datetime | None

    @property
    def gap(self) -> int:
        """Seats left unused (positive) or missing (negative)."""
        return self.seats - (self.used or 0)

    @property
    def shortfall(self) -> int:
        """Seats missing to cover what's in use (0 when there are enough)."""
        return max(0, (self.used or 0) - self.seats)

    @property
    def unused(self) -> int:
        return max(0, self.seats - (self.used or 0))

    @property
    def percent(self) -> int:
        used = self.used or 0
        return min(100, round(100 * used / self.seats)) if self.seats else (100 if used else 0)


def licences(*, tenant: Tenant) -> dict[str, Licence]:
    """The tenant's licence rows by product (products without a row have no seats)."""
    return {lic.product: lic for lic in Licence.objects.filter(tenant=tenant)}


def licence_usage(*, tenant: Tenant, devices: DeviceCounts, identities: IdentityCounts) -> list[LicenceUsage]:
    """Seats against usage for every product (one query; the counts are passed in).

    Defender for Endpoint is measured against protected devices and Defender
    for Identity against protected identities (the readiness targets);
    Office 365 and Entra ID P1 seats are needed by every enabled user. Entra
    ID P2 is bought for a subset of users (privileged identity management),
    which the emulated directory doesn't model, so it isn't measured.
    """
    rows = licences(tenant=tenant)
    usage: dict[str, tuple[int | None, str]] = {
        LicenceProduct.DEFENDER_ENDPOINT_P2: (devices.protected, "protected devices"),
        LicenceProduct.DEFENDER_IDENTITY: (identities.protected, "protected identities"),
        LicenceProduct.DEFENDER_OFFICE_P2: (identities.enabled_users, "enabled users"),
        LicenceProduct.ENTRA_ID_P1: (identities.enabled_users, "enabled users"),
        LicenceProduct.ENTRA_ID_P2: (None, "not measured"),
    }
    result = []
    for product in LicenceProduct:
        row = rows.get(product.value)
        used, used_label = usage[product]
        result.append(
            LicenceUsage(
                product=product.value,
                label=product.label,
                seats=row.seats if row else 0,
                used=used,
                used_label=used_label,
                updated_at=row.updated_at if row else None,
            )
        )
    return result


# --- Security settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingState:
    spec: SettingSpec
    value: str
    is_default: bool
    updated_at: datetime | None

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def value_label(self) -> str:
        return dict(self.spec.choices).get(self.value, self.value)


def security_settings(*, tenant: Tenant) -> list[SettingState]:
    """Every catalogued setting with the tenant's value, or the default if never set: one query."""
    stored = {s.key: s for s in SecuritySetting.objects.filter(tenant=tenant)}
    result = []
    for spec in SETTINGS:
        row = stored.get(spec.key)
        result.append(
            SettingState(
                spec=spec,
                value=row.value if row else spec.default,
                is_default=row is None,
                updated_at=row.updated_at if row else None,
            )
        )
    return result


def security_settings_by_product(*, tenant: Tenant) -> list[tuple[str, list[SettingState]]]:
    grouped: dict[str, list[SettingState]] = {}
    for state in security_settings(tenant=tenant):
        grouped.setdefault(state.spec.product, []).append(state)
    return list(grouped.items())


# --- Directory -----------------------------------------------------------------------------------

USER_STATUS_FILTERS = {"enabled", "disabled"}


def _search_terms(q: str) -> list[str]:
    # Up to five words, each matched anywhere in search_text once the database folds it
    # as it folds search_text (NUL bytes, which PostgreSQL refuses in text, dropped).
    return (q or "").replace("\x00", "").split()[:5]


def directory_users(*, tenant: Tenant, q: str = "", status: str = "") -> QuerySet[DirectoryUser]:
    """Directory users (with their domain controller) matching an accent-insensitive search."""
    qs = DirectoryUser.objects.filter(tenant=tenant).select_related("domain_controller")
    for term in _search_terms(q):
        qs = qs.filter(search_text__contains=Fold(Value(term)))
    if status == "enabled":
        qs = qs.filter(enabled=True)
    elif status == "disabled":
        qs = qs.filter(enabled=False)
    return qs.order_by("display_name", "id")


def directory_groups(*, tenant: Tenant, q: str = "") -> QuerySet[DirectoryGroup]:
    """Groups with their member counts, annotated in the same query. The count is a subquery per row
    rather than a GROUP BY over the join, so a page of groups counts only its own groups' members."""
    members = (
        GroupMembership.objects.filter(group=OuterRef("pk"))
        .order_by()
        .values("group")
        .annotate(n=Count("*"))
        .values("n")
    )
    qs = DirectoryGroup.objects.filter(tenant=tenant).annotate(member_count=Coalesce(Subquery(members), 0))
    for term in _search_terms(q):
        qs = qs.filter(search_text__contains=Fold(Value(term)))
    return qs.order_by("display_name", "id")


@dataclass(frozen=True)
class DirectoryCounts:
    users: int
    enabled_users: int
    groups: int
    mail_enabled_groups: int


def directory_counts(*, tenant: Tenant, identities: IdentityCounts) -> DirectoryCounts:
    groups = DirectoryGroup.objects.filter(tenant=tenant).aggregate(
        groups=Count("id"), mail_enabled=Count("id", filter=Q(mail_enabled=True))
    )
    return DirectoryCounts(
        users=identities.users,
        enabled_users=identities.enabled_users,
        groups=groups["groups"],
        mail_enabled_groups=groups["mail_enabled"],
    )


# How long after a deletion a second "Delete" of the same user is taken for a resubmit.
RESUBMIT_WINDOW = timedelta(hours=1)


def directory_user_deleted_recently(*, tenant: Tenant, pk: int, now: datetime) -> bool:
    """Whether this tenant deleted directory user ``pk`` within ``RESUBMIT_WINDOW`` (its audit trail says so).

    Tells a repeated delete (harmless: it is gone, as asked) from an id this
    tenant never had (a 404).
    """
    gone = DirectoryUser(pk=pk)
    return (
        events_since(
            tenant=tenant, action="environment.directory_user_deleted", target=gone, since=now - RESUBMIT_WINDOW
        ).count
        > 0
    )
