"""Changes to a tenant's exclusion list. Each one is keyword-only, atomic, audited and versioned.

Every service locks the tenant's ``ExclusionSettings`` row (creating it on first use), refuses a
stale ``expected_version`` with ``StaleExclusions`` (409, nothing saved) and bumps the version, so
two admins editing the list at once can't silently undo each other's change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from environment.models import DeviceGroup, DirectoryGroup
from exclusions.exceptions import ExclusionsError, HighValueNeedsConfirmation, NotASecurityGroup, StaleExclusions
from exclusions.models import ExcludedDeviceGroup, ExcludedUserGroup, ExclusionSettings
from tenancy.models import Tenant, User

AUDIT_PREFIX = "exclusions."


def _lock(*, tenant: Tenant, expected_version: int) -> ExclusionSettings:
    ExclusionSettings.objects.get_or_create(tenant=tenant)
    settings = ExclusionSettings.objects.select_for_update().get(tenant=tenant)
    if settings.version != expected_version:
        raise StaleExclusions(current_version=settings.version)
    return settings


def _bump(settings: ExclusionSettings) -> None:
    settings.version += 1
    settings.updated_at = timezone.now()
    settings.save(update_fields=["version", "updated_at", "exclude_high_value"])


def _ids(values: Sequence[Any]) -> list[int]:
    try:
        return sorted({int(v) for v in values})
    except (TypeError, ValueError):
        raise ExclusionsError("Choose groups from the list.")


def _names(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


@transaction.atomic
def exclusion_device_groups_add(
    *,
    tenant: Tenant,
    acting_user: User,
    device_group_ids: Sequence[Any],
    expected_version: int,
    in_guide: bool = False,
) -> int:
    """Exclude device groups from remediation; returns how many were newly excluded.

    Only the tenant's existing Defender for Endpoint device groups can be excluded. ``in_guide``
    marks them as added in the Get started guide's step, whose Skip discards them again.
    """
    ids = _ids(device_group_ids)
    if not ids:
        raise ExclusionsError("Choose at least one device group.")
    settings = _lock(tenant=tenant, expected_version=expected_version)
    groups = list(DeviceGroup.objects.filter(tenant=tenant, pk__in=ids).order_by("name"))
    if len(groups) != len(ids):
        raise ExclusionsError("Choose device groups of this organization.")
    already = set(
        ExcludedDeviceGroup.objects.filter(tenant=tenant, device_group_id__in=ids).values_list(
            "device_group_id", flat=True
        )
    )
    new = [g for g in groups if g.pk not in already]
    if not new:
        return 0
    now = timezone.now()
    ExcludedDeviceGroup.objects.bulk_create(
        [
            ExcludedDeviceGroup(
                tenant=tenant, device_group=g, added_by=acting_user, added_at=now, added_in_guide=in_guide
            )
            for g in new
        ]
    )
    _bump(settings)
    names = [g.name for g in new]
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "device_groups_added",
        summary=f"Excluded from remediation the device group{'s' if len(new) != 1 else ''} {_names(names)}",
        before=None,
        after={"device_groups": names, "version": settings.version, "in_guide": in_guide},
    )
    return len(new)


@transaction.atomic
def exclusion_device_group_remove(
    *, tenant: Tenant, acting_user: User, excluded: ExcludedDeviceGroup, expected_version: int
) -> None:
    """Remove a device group from the exclusion list: the experts may act on its devices again."""
    settings = _lock(tenant=tenant, expected_version=expected_version)
    row = ExcludedDeviceGroup.objects.select_related("device_group").filter(tenant=tenant, pk=excluded.pk).first()
    if row is None:
        raise StaleExclusions(current_version=settings.version)
    name = row.device_group.name
    row.delete()
    _bump(settings)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "device_group_removed",
        summary=f"Removed the device group {name} from the exclusion list",
        target=excluded.device_group,
        before={"device_group": name},
        after={"version": settings.version},
    )


@transaction.atomic
def exclusion_user_groups_add(
    *,
    tenant: Tenant,
    acting_user: User,
    directory_group_ids: Sequence[Any],
    expected_version: int,
    in_guide: bool = False,
) -> int:
    """Exclude Entra ID security groups: their cloud members get guidance instead of remediation.

    Users are excluded only through security groups; a mail-only group is refused.
    """
    ids = _ids(directory_group_ids)
    if not ids:
        raise ExclusionsError("Choose at least one user group.")
    settings = _lock(tenant=tenant, expected_version=expected_version)
    groups = list(DirectoryGroup.objects.filter(tenant=tenant, pk__in=ids).order_by("display_name"))
    if len(groups) != len(ids):
        raise ExclusionsError("Choose user groups of this organization.")
    if any(not g.security_enabled for g in groups):
        raise NotASecurityGroup()
    already = set(
        ExcludedUserGroup.objects.filter(tenant=tenant, directory_group_id__in=ids).values_list(
            "directory_group_id", flat=True
        )
    )
    new = [g for g in groups if g.pk not in already]
    if not new:
        return 0
    now = timezone.now()
    ExcludedUserGroup.objects.bulk_create(
        [
            ExcludedUserGroup(
                tenant=tenant, directory_group=g, added_by=acting_user, added_at=now, added_in_guide=in_guide
            )
            for g in new
        ]
    )
    _bump(settings)
    names = [g.display_name for g in new]
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "user_groups_added",
        summary=f"Excluded from remediation the user group{'s' if len(new) != 1 else ''} {_names(names)}",
        before=None,
        after={"user_groups": names, "version": settings.version, "in_guide": in_guide},
    )
    return len(new)


@transaction.atomic
def exclusion_user_group_remove(
    *, tenant: Tenant, acting_user: User, excluded: ExcludedUserGroup, expected_version: int
) -> None:
    """Remove a user group from the exclusion list: the experts may act on its members again."""
    settings = _lock(tenant=tenant, expected_version=expected_version)
    row = ExcludedUserGroup.objects.select_related("directory_group").filter(tenant=tenant, pk=excluded.pk).first()
    if row is None:
        raise StaleExclusions(current_version=settings.version)
    name = row.directory_group.display_name
    row.delete()
    _bump(settings)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "user_group_removed",
        summary=f"Removed the user group {name} from the exclusion list",
        target=excluded.directory_group,
        before={"user_group": name},
        after={"version": settings.version},
    )


@transaction.atomic
def exclusion_high_value_set(
    *, tenant: Tenant, acting_user: User, enabled: bool, expected_version: int, confirm: bool = False
) -> bool:
    """Exclude (or stop excluding) every high-value device and user; returns whether anything changed.

    Turning it on also excludes every asset tagged high value later, so it asks first.
    """
    settings = _lock(tenant=tenant, expected_version=expected_version)
    if settings.exclude_high_value == enabled:
        return False
    if enabled and not confirm:
        raise HighValueNeedsConfirmation()
    settings.exclude_high_value = enabled
    _bump(settings)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + "high_value_changed",
        summary=(
            "Excluded all high-value devices and users from remediation"
            if enabled
            else "Stopped excluding all high-value devices and users from remediation"
        ),
        before={"exclude_high_value": not enabled},
        after={"exclude_high_value": enabled, "version": settings.version},
    )
    return True


@transaction.atomic
def exclusion_guide_finish(*, tenant: Tenant, acting_user: User, keep: bool, expected_version: int) -> int:
    """The guide's Exclusions step: Next keeps what was added in it (``keep``), Skip discards it.

    Returns how many groups were kept or discarded.
    """
    settings = _lock(tenant=tenant, expected_version=expected_version)
    devices = ExcludedDeviceGroup.objects.filter(tenant=tenant, added_in_guide=True)
    users = ExcludedUserGroup.objects.filter(tenant=tenant, added_in_guide=True)
    names = sorted(
        [
            *devices.values_list("device_group__name", flat=True),
            *users.values_list("directory_group__display_name", flat=True),
        ]
    )
    if keep:
        n = devices.update(added_in_guide=False) + users.update(added_in_guide=False)
    else:
        n = devices.delete()[0] + users.delete()[0]
    if not n:
        return 0
    _bump(settings)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action=AUDIT_PREFIX + ("guide_confirmed" if keep else "guide_discarded"),
        summary=(
            f"Confirmed the exclusion list in the Get started guide ({_names(names)})"
            if keep
            else f"Skipped the Exclusions step: discarded {_names(names)}"
        ),
        before={"added_in_guide": names},
        after={"kept": keep, "version": settings.version},
    )
    return n
