"""Reads of a tenant's exclusions. Nothing here writes; every read is scoped by ``tenant``.

A tenant that has never changed its exclusions has no ``ExclusionSettings`` row: the reads then
describe the defaults (nothing excluded, version 1), so reading never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from environment.models import DeviceGroup, DeviceTally, DirectoryGroup, DirectoryUser, GroupMembership
from exclusions.models import ExcludedDeviceGroup, ExcludedUserGroup, ExclusionSettings
from tenancy.models import Tenant

# The flyout's search shows at most this many groups; a longer list asks for a narrower search.
OPTIONS_LIMIT = 50


@dataclass(frozen=True)
class ExclusionRules:
    """What the evaluator needs to know about a tenant's exclusions (two queries)."""

    excluded_device_groups: dict[int, str]  # device group id -> name
    has_user_groups: bool
    exclude_high_value: bool

    @property
    def any(self) -> bool:
        return bool(self.excluded_device_groups) or self.has_user_groups or self.exclude_high_value


def _settings(tenant: Tenant) -> ExclusionSettings:
    found = ExclusionSettings.objects.filter(tenant_id=tenant.pk).first()
    return found or ExclusionSettings(tenant_id=tenant.pk)


def exclusion_version(*, tenant: Tenant) -> int:
    """The exclusion list's version, for a form that changes it (one query)."""
    return _settings(tenant).version


def exclusion_rules(*, tenant: Tenant) -> ExclusionRules:
    settings = _settings(tenant)
    groups = dict(
        ExcludedDeviceGroup.objects.filter(tenant_id=tenant.pk).values_list("device_group_id", "device_group__name")
    )
    has_users = ExcludedUserGroup.objects.filter(tenant_id=tenant.pk).exists()
    return ExclusionRules(
        excluded_device_groups=groups, has_user_groups=has_users, exclude_high_value=settings.exclude_high_value
    )


def user_excluding_group(*, tenant: Tenant, user: DirectoryUser) -> str | None:
    """The name of an excluded security group ``user`` belongs to, if any (one query).

    On-premises users are never excluded, whatever their groups (the later document's note).
    """
    if user.tenant_id != tenant.pk or user.domain_controller_id is not None:
        return None
    name: str | None = (
        ExcludedUserGroup.objects.filter(
            tenant_id=tenant.pk,
            directory_group__groupmembership__user_id=user.pk,
            directory_group__tenant_id=tenant.pk,
        )
        .order_by("directory_group__display_name")
        .values_list("directory_group__display_name", flat=True)
        .first()
    )
    return name


@dataclass(frozen=True)
class ExcludedDeviceGroupRow:
    pk: int
    group_id: int
    name: str
    devices: int
    added_by: str
    added_at: datetime
    added_in_guide: bool


@dataclass(frozen=True)
class ExcludedUserGroupRow:
    pk: int
    group_id: int
    name: str
    cloud_members: int
    on_premises_members: int
    added_by: str
    added_at: datetime
    added_in_guide: bool


@dataclass(frozen=True)
class ExclusionState:
    version: int
    exclude_high_value: bool
    device_groups: list[ExcludedDeviceGroupRow]
    user_groups: list[ExcludedUserGroupRow]

    @property
    def added_in_guide(self) -> int:
        return sum(1 for r in self.device_groups if r.added_in_guide) + sum(
            1 for r in self.user_groups if r.added_in_guide
        )


def exclusion_state(*, tenant: Tenant) -> ExclusionState:
    """The exclusion list as the pages show it: three queries whatever its length."""
    settings = _settings(tenant)
    per_group = (
        DeviceTally.objects.filter(tenant_id=tenant.pk, group_key=OuterRef("device_group_id"))
        .order_by()
        .values("tenant_id")
        .annotate(c=Sum("devices"))
        .values("c")
    )
    devices = [
        ExcludedDeviceGroupRow(
            pk=row["pk"],
            group_id=row["device_group_id"],
            name=row["device_group__name"],
            devices=row["n"],
            added_by=row["added_by__email"] or "system",
            added_at=row["added_at"],
            added_in_guide=row["added_in_guide"],
        )
        for row in ExcludedDeviceGroup.objects.filter(tenant_id=tenant.pk)
        .annotate(n=Coalesce(Subquery(per_group), 0))
        .order_by("device_group__name", "pk")
        .values("pk", "device_group_id", "device_group__name", "n", "added_by__email", "added_at", "added_in_guide")
    ]
    members = "directory_group__groupmembership"
    on_premises = Q(directory_group__groupmembership__user__domain_controller__isnull=False)
    users = [
        ExcludedUserGroupRow(
            pk=row["pk"],
            group_id=row["directory_group_id"],
            name=row["directory_group__display_name"],
            cloud_members=row["cloud"],
            on_premises_members=row["onprem"],
            added_by=row["added_by__email"] or "system",
            added_at=row["added_at"],
            added_in_guide=row["added_in_guide"],
        )
        for row in ExcludedUserGroup.objects.filter(tenant_id=tenant.pk)
        .annotate(cloud=Count(members, filter=~on_premises), onprem=Count(members, filter=on_premises))
        .order_by("directory_group__display_name", "pk")
        .values(
            "pk",
            "directory_group_id",
            "directory_group__display_name",
            "cloud",
            "onprem",
            "added_by__email",
            "added_at",
            "added_in_guide",
        )
    ]
    return ExclusionState(
        version=settings.version,
        exclude_high_value=settings.exclude_high_value,
        device_groups=devices,
        user_groups=users,
    )


@dataclass(frozen=True)
class ExclusionCounts:
    """How many of the tenant's devices and users the experts only advise on."""

    devices: int
    users: int
    exclude_high_value: bool


def _excluded_users(*, tenant: Tenant, high_value: bool) -> int:
    """The tenant's cloud users in an excluded security group, or tagged high value when those are
    excluded, each once (one query). On-premises users are never excluded (the later document's note).

    Read from the excluded groups' memberships (the membership index leads with the group) and the
    high-value users' partial index: the work follows the excluded users, not the directory's size.
    """
    members = (
        GroupMembership.objects.filter(
            group_id__in=ExcludedUserGroup.objects.filter(tenant_id=tenant.pk).values("directory_group_id"),
            user__tenant_id=tenant.pk,
            user__domain_controller__isnull=True,
        )
        .order_by()
        .values("user_id")
    )
    if not high_value:
        return members.distinct().count()
    tagged = DirectoryUser.objects.filter(tenant_id=tenant.pk, high_value=True, domain_controller__isnull=True)
    # UNION (not UNION ALL) counts a tagged member of an excluded group once.
    return members.union(tagged.order_by().values("pk")).count()


def exclusion_counts(*, tenant: Tenant, rules: ExclusionRules | None = None) -> ExclusionCounts:
    """The excluded devices and the excluded users, each counted once: two queries, and one for the
    high-value setting unless ``rules`` (``exclusion_rules``) already says it.

    Devices are summed from the device tally's few rows (its key carries the group and the high-value
    tag), never counted over the device table. Users are counted from the excluded groups' memberships
    and the high-value users' partial index, so the count reads the excluded users, never the directory.
    """
    high_value = rules.exclude_high_value if rules is not None else _settings(tenant).exclude_high_value
    device_filter: Q | Exists = Exists(
        ExcludedDeviceGroup.objects.filter(tenant_id=tenant.pk, device_group_id=OuterRef("group_key"))
    )
    if high_value:
        device_filter = device_filter | Q(high_value=True)
    devices = DeviceTally.objects.filter(device_filter, tenant_id=tenant.pk).aggregate(n=Coalesce(Sum("devices"), 0))
    users = _excluded_users(tenant=tenant, high_value=high_value)
    return ExclusionCounts(devices=devices["n"], users=users, exclude_high_value=high_value)


@dataclass(frozen=True)
class GroupOption:
    pk: int
    name: str
    detail: str


def _limited(q: str) -> str:
    return (q or "").strip()[:100]


def device_group_options(*, tenant: Tenant, q: str = "") -> list[GroupOption]:
    """The tenant's device groups not excluded yet whose name contains ``q`` (one query)."""
    qs = (
        DeviceGroup.objects.filter(tenant_id=tenant.pk)
        .exclude(pk__in=ExcludedDeviceGroup.objects.filter(tenant_id=tenant.pk).values("device_group_id"))
        .order_by("name", "pk")
    )
    if _limited(q):
        qs = qs.filter(name__icontains=_limited(q))
    return [GroupOption(g.pk, g.name, g.description) for g in qs[:OPTIONS_LIMIT]]


def user_group_options(*, tenant: Tenant, q: str = "") -> list[GroupOption]:
    """The tenant's security groups not excluded yet whose name contains ``q``, with their members (one query)."""
    qs = (
        DirectoryGroup.objects.filter(tenant_id=tenant.pk, security_enabled=True)
        .exclude(pk__in=ExcludedUserGroup.objects.filter(tenant_id=tenant.pk).values("directory_group_id"))
        .annotate(
            cloud=Count("groupmembership", filter=Q(groupmembership__user__domain_controller__isnull=True)),
            onprem=Count("groupmembership", filter=Q(groupmembership__user__domain_controller__isnull=False)),
        )
        .order_by("display_name", "pk")
    )
    if _limited(q):
        qs = qs.filter(display_name__icontains=_limited(q))
    options = []
    for g in qs[:OPTIONS_LIMIT]:
        detail = f"{g.cloud} cloud member{'s' if g.cloud != 1 else ''}"
        if g.onprem:
            detail += f", {g.onprem} on-premises (not excluded)"
        options.append(GroupOption(g.pk, g.display_name, detail))
    return options


def tenant_device_group_ids(*, tenant: Tenant, ids: set[int]) -> set[int]:
    """Which of ``ids`` are the tenant's device groups (one query)."""
    return set(DeviceGroup.objects.filter(tenant_id=tenant.pk, pk__in=ids).values_list("pk", flat=True))


def tenant_security_group_ids(*, tenant: Tenant, ids: set[int], security_only: bool = True) -> set[int]:
    """Which of ``ids`` are the tenant's directory groups (security groups only, unless told otherwise)."""
    qs = DirectoryGroup.objects.filter(tenant_id=tenant.pk, pk__in=ids)
    if security_only:
        qs = qs.filter(security_enabled=True)
    return set(qs.values_list("pk", flat=True))
