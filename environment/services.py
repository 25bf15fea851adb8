"""Changes to a tenant's emulated Microsoft environment.

Every service here:

* is keyword-only and runs in one transaction;
* scopes every query to ``tenant`` (an id of another tenant simply matches
  nothing, it is never touched);
* does bulk work with bulk SQL (``QuerySet.update``/``bulk_create``), never a
  per-row loop, so onboarding 100,000 devices is one UPDATE;
* stamps the touched rows' ``updated_at`` and the tenant's
  ``environment_changed_at`` (one UPDATE), so the readiness refresh can tell
  what moved since it last looked;
* writes one audit row in the same transaction, with before/after (counts
  for bulk changes).

A call that would change nothing (e.g. onboarding devices that are already
onboarded) changes nothing: no timestamps move and no audit row is written.
Invalid input raises ``core.errors.Invalid`` (with ``fields`` when it can
say which input is wrong), and a change made against a value that moved
meanwhile raises ``core.errors.Conflict``; each with a message a person can
act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Subquery
from django.utils import timezone

from audit.services import audit_record
from core.errors import Conflict, Invalid
from environment.models import (
    AntivirusMode,
    Device,
    DeviceGroup,
    DirectoryGroup,
    DirectoryUser,
    DomainController,
    GroupMembership,
    Licence,
    LicenceProduct,
    OnboardingState,
    SecuritySetting,
)
from environment.security_settings import SETTINGS_BY_KEY
from environment.selectors import device_state_version
from tenancy.models import Tenant, User

MAX_SEATS = 1_000_000
# Upper bound for "onboard N devices at once"; larger than any tenant we emulate.
MAX_ONBOARD_COUNT = 1_000_000


def _touch_tenant(tenant: Tenant, now: datetime) -> None:
    """Record that the tenant's environment changed (one UPDATE)."""
    Tenant.objects.filter(pk=tenant.pk).update(environment_changed_at=now)
    tenant.environment_changed_at = now


def _clean_ids(ids: Iterable[Any]) -> list[int]:
    try:
        return sorted({int(i) for i in ids})
    except (TypeError, ValueError):
        raise Invalid("Device ids must be whole numbers.")


def _scoped_devices(
    *,
    tenant: Tenant,
    device_ids: Sequence[Any] | None,
    device_group: DeviceGroup | None,
    name_contains: str | None = None,
) -> QuerySet[Device]:
    qs = Device.objects.filter(tenant=tenant)
    if name_contains:
        qs = qs.filter(name__icontains=name_contains)
    if device_group is not None:
        if device_group.tenant_id != tenant.pk:
            raise Invalid("That device group belongs to another organisation.")
        qs = qs.filter(device_group=device_group)
    if device_ids is not None:
        qs = qs.filter(pk__in=_clean_ids(device_ids))
    return qs


def _state_counts(tenant: Tenant) -> dict[str, int]:
    """Tenant-wide device counts by onboarding state and AV mode, one query."""
    return Device.objects.filter(tenant=tenant).aggregate(
        total=Count("id"),
        onboarded=Count("id", filter=Q(onboarding_state=OnboardingState.ONBOARDED)),
        not_onboarded=Count("id", filter=Q(onboarding_state=OnboardingState.NOT_ONBOARDED)),
        active=Count("id", filter=Q(av_mode=AntivirusMode.ACTIVE)),
        passive=Count("id", filter=Q(av_mode=AntivirusMode.PASSIVE)),
        disabled=Count("id", filter=Q(av_mode=AntivirusMode.DISABLED)),
    )


def _check_devices_as_read(before: dict[str, int], expected_version: str | None) -> None:
    """``Conflict`` when the devices changed since the list a bulk action was chosen on was read.

    "Onboard this many" or "all matching" chosen on a stale list would act on
    devices the admin hasn't seen, and the same form sent twice would onboard
    a second batch: both change something, so neither is a double submit.
    """
    if expected_version is None:
        return
    now = device_state_version(
        total=before["total"],
        onboarded=before["onboarded"],
        active=before["active"],
        passive=before["passive"],
        disabled=before["disabled"],
    )
    if now != expected_version:
        raise Conflict(
            "The devices changed since you opened this page (onboarded or switched by someone else, or this "
            "action was already sent), so nothing was changed. Review the list below and try again."
        )


def _scope_description(
    *,
    device_ids: Sequence[Any] | None,
    device_group: DeviceGroup | None,
    count: int | None = None,
    from_mode: str | None = None,
    onboarding_state: str | None = None,
    name_contains: str | None = None,
    all_devices: bool = False,
) -> dict[str, Any]:
    scope: dict[str, Any] = {}
    if onboarding_state:
        scope["onboarding_state"] = onboarding_state
    if name_contains:
        scope["name_contains"] = name_contains
    if device_group is not None:
        scope["device_group"] = {"id": device_group.pk, "name": device_group.name}
    if device_ids is not None:
        scope["selected_devices"] = len(device_ids)
    if count is not None:
        scope["count"] = count
    if from_mode is not None:
        scope["from_mode"] = from_mode
    if all_devices:
        scope["all_devices"] = True
    return scope


# --- Defender for Endpoint: devices ------------------------------------------------------


@transaction.atomic
def devices_onboard(
    *,
    tenant: Tenant,
    acting_user: User | None,
    device_ids: Sequence[Any] | None = None,
    device_group: DeviceGroup | None = None,
    count: int | None = None,
    name_contains: str | None = None,
    av_mode: str | None = None,
    all_devices: bool = False,
    expected_version: str | None = None,
) -> int:
    """Onboard devices to Defender for Endpoint; returns how many were onboarded.

    Choose the devices with any of: ``device_ids`` (specific devices),
    ``device_group`` (a whole group) and ``count`` (at most N devices that
    are not onboarded yet, in name order). They combine: a group with a
    count onboards N devices of that group; ``name_contains`` (a name
    search) and ``av_mode`` narrow further, for the device list's "all
    matching" action. Onboarding every device of the tenant needs
    ``all_devices=True``. Devices that are already onboarded are left alone.
    """
    if device_ids is None and device_group is None and count is None and not name_contains and not all_devices:
        raise Invalid("Choose the devices to onboard: specific devices, a device group or a number.")
    if av_mode is not None:
        av_mode = _validate_mode(av_mode, field="av_mode")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_ONBOARD_COUNT:
            raise Invalid(
                f"Enter how many devices to onboard, from 1 to {MAX_ONBOARD_COUNT:,}.",
            )
    candidates = _scoped_devices(
        tenant=tenant, device_ids=device_ids, device_group=device_group, name_contains=name_contains
    ).filter(onboarding_state=OnboardingState.NOT_ONBOARDED)
    if av_mode is not None:
        candidates = candidates.filter(av_mode=av_mode)
    if count is not None:
        # One UPDATE ... WHERE id IN (SELECT id ... LIMIT n): still bulk SQL.
        # The state is checked again on the outer UPDATE so that, if a
        # concurrent call onboards some of the same rows first, PostgreSQL
        # re-evaluates them after the row lock and they aren't counted twice.
        candidates = Device.objects.filter(
            pk__in=Subquery(candidates.order_by("name", "id").values("pk")[:count]),
            onboarding_state=OnboardingState.NOT_ONBOARDED,
        )
    before = _state_counts(tenant)
    _check_devices_as_read(before, expected_version)
    now = timezone.now()
    changed = candidates.update(
        onboarding_state=OnboardingState.ONBOARDED, onboarded_at=now, last_seen=now, updated_at=now
    )
    if not changed:
        return 0
    _touch_tenant(tenant, now)
    after = {
        **before,
        "onboarded": before["onboarded"] + changed,
        "not_onboarded": before["not_onboarded"] - changed,
    }
    where = f" in {device_group.name}" if device_group is not None else ""
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.devices_onboarded",
        summary=f"Onboarded {changed:,} device{'s' if changed != 1 else ''}{where} to Defender for Endpoint",
        target=device_group,
        before={"onboarded": before["onboarded"], "not_onboarded": before["not_onboarded"]},
        after={
            "onboarded": after["onboarded"],
            "not_onboarded": after["not_onboarded"],
            "changed": changed,
            "scope": _scope_description(
                device_ids=device_ids,
                device_group=device_group,
                count=count,
                from_mode=av_mode,
                name_contains=name_contains,
                all_devices=all_devices,
            ),
        },
    )
    return changed


def _validate_mode(mode: Any, *, field: str = "mode") -> str:
    if mode not in AntivirusMode.values:
        allowed = ", ".join(AntivirusMode.values)
        raise Invalid(
            f"“{mode}” isn't a Defender Antivirus mode; use one of {allowed}.",
        )
    return str(mode)


@transaction.atomic
def devices_set_antivirus_mode(
    *,
    tenant: Tenant,
    acting_user: User | None,
    mode: str,
    device_ids: Sequence[Any] | None = None,
    device_group: DeviceGroup | None = None,
    from_mode: str | None = None,
    onboarding_state: str | None = None,
    name_contains: str | None = None,
    all_devices: bool = False,
    expected_version: str | None = None,
) -> int:
    """Switch Defender Antivirus to ``mode`` on the chosen devices; returns how many changed.

    Scope with ``device_ids``, ``device_group`` and/or ``from_mode`` (only
    devices currently in that mode), e.g. "all passive devices in group X".
    ``onboarding_state`` and ``name_contains`` narrow further (the device
    list's "all matching" action). Changing every device of the tenant needs
    ``all_devices=True`` so that a forgotten filter can't silently flip the
    whole estate.
    """
    mode = _validate_mode(mode)
    if from_mode is not None:
        from_mode = _validate_mode(from_mode, field="from_mode")
    if onboarding_state is not None and onboarding_state not in OnboardingState.values:
        raise Invalid(f"“{onboarding_state}” isn't an onboarding state.")
    narrowed = any(x is not None for x in (device_ids, device_group, from_mode, onboarding_state)) or bool(
        name_contains
    )
    if not narrowed and not all_devices:
        raise Invalid("Choose the devices to change: specific devices, a device group or their current mode.")
    scoped = _scoped_devices(
        tenant=tenant, device_ids=device_ids, device_group=device_group, name_contains=name_contains
    )
    if from_mode is not None:
        scoped = scoped.filter(av_mode=from_mode)
    if onboarding_state is not None:
        scoped = scoped.filter(onboarding_state=onboarding_state)
    before = _state_counts(tenant)
    _check_devices_as_read(before, expected_version)
    # Per-mode counts of the rows about to change, for the audit trail (one query).
    changing = dict(
        scoped.exclude(av_mode=mode).order_by().values("av_mode").annotate(n=Count("id")).values_list("av_mode", "n")
    )
    now = timezone.now()
    changed = scoped.exclude(av_mode=mode).update(av_mode=mode, updated_at=now)
    if not changed:
        return 0
    _touch_tenant(tenant, now)
    after = dict(before)
    for old_mode, n in changing.items():
        after[old_mode] -= n
    after[mode] += changed
    where = f" in {device_group.name}" if device_group is not None else ""
    label = AntivirusMode(mode).label.lower()
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.devices_antivirus_mode_set",
        summary=f"Set Defender Antivirus to {label} mode on {changed:,} device{'s' if changed != 1 else ''}{where}",
        target=device_group,
        before={m: before[m] for m in AntivirusMode.values},
        after={
            **{m: after[m] for m in AntivirusMode.values},
            "mode": mode,
            "changed": changed,
            "changed_from": changing,
            "scope": _scope_description(
                device_ids=device_ids,
                device_group=device_group,
                from_mode=from_mode,
                onboarding_state=onboarding_state,
                name_contains=name_contains,
                all_devices=all_devices,
            ),
        },
    )
    return changed


@transaction.atomic
def devices_set_high_value(
    *, tenant: Tenant, acting_user: User | None, device_ids: Sequence[Any], high_value: bool
) -> int:
    """Tag (or untag) the chosen devices as high-value; returns how many changed (one UPDATE).

    A tenant that excludes all high-value assets from remediation (exclusions/) excludes a device the
    moment it is tagged, so the tag is audited like any other change.
    """
    ids = _clean_ids(device_ids)
    if not ids:
        raise Invalid("Select at least one device first.")
    now = timezone.now()
    changed = (
        Device.objects.filter(tenant=tenant, pk__in=ids)
        .exclude(high_value=high_value)
        .update(high_value=high_value, updated_at=now)
    )
    if not changed:
        return 0
    _touch_tenant(tenant, now)
    devices = f"{changed:,} device{'s' if changed != 1 else ''}"
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.devices_high_value_set" if high_value else "environment.devices_high_value_cleared",
        summary=f"Tagged {devices} as high value" if high_value else f"Removed the high-value tag from {devices}",
        before={"high_value": not high_value, "devices": changed},
        after={"high_value": high_value, "devices": changed, "selected": len(ids)},
    )
    return changed


# --- Defender for Identity: domain controllers ----------------------------------------------


def _set_sensor(
    *, tenant: Tenant, acting_user: User | None, domain_controller: DomainController, installed: bool
) -> DomainController:
    try:
        dc = DomainController.objects.select_for_update().get(pk=domain_controller.pk, tenant=tenant)
    except DomainController.DoesNotExist:
        raise Invalid("That domain controller isn't part of this organisation.")
    if dc.sensor_installed == installed:
        state = "already has a sensor installed" if installed else "has no sensor installed"
        raise Invalid(f"{dc.name} {state}.")
    identities = DirectoryUser.objects.filter(tenant=tenant, domain_controller=dc, enabled=True).count()
    now = timezone.now()
    dc.sensor_installed = installed
    dc.sensor_installed_at = now if installed else None
    dc.updated_at = now
    dc.save(update_fields=["sensor_installed", "sensor_installed_at", "updated_at"])
    _touch_tenant(tenant, now)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.sensor_installed" if installed else "environment.sensor_uninstalled",
        summary=(
            f"Installed the Defender for Identity sensor on {dc.name} ({identities:,} identities)"
            if installed
            else f"Removed the Defender for Identity sensor from {dc.name} ({identities:,} identities)"
        ),
        target=dc,
        before={"sensor_installed": not installed, "identities": identities},
        after={"sensor_installed": installed, "identities": identities},
    )
    domain_controller.sensor_installed = dc.sensor_installed
    domain_controller.sensor_installed_at = dc.sensor_installed_at
    domain_controller.updated_at = now
    return dc


@transaction.atomic
def domain_controller_install_sensor(
    *, tenant: Tenant, acting_user: User | None, domain_controller: DomainController
) -> DomainController:
    """Install the Defender for Identity sensor; the identities it covers become protected."""
    return _set_sensor(tenant=tenant, acting_user=acting_user, domain_controller=domain_controller, installed=True)


@transaction.atomic
def domain_controller_uninstall_sensor(
    *, tenant: Tenant, acting_user: User | None, domain_controller: DomainController
) -> DomainController:
    """Remove the Defender for Identity sensor; its identities are no longer protected."""
    return _set_sensor(tenant=tenant, acting_user=acting_user, domain_controller=domain_controller, installed=False)


# --- Security settings -----------------------------------------------------------------------


@transaction.atomic
def security_setting_set(
    *, tenant: Tenant, acting_user: User | None, key: str, value: str, expected_value: str | None = None
) -> SecuritySetting | None:
    """Set one product setting; returns the row, or None if the value was already in place.

    ``expected_value`` is the value the admin saw when they opened the page:
    if someone changed it since, nothing is saved and a ``Conflict`` says what
    it is now.
    """
    spec = SETTINGS_BY_KEY.get(key)
    if spec is None:
        raise Invalid(f"“{key}” isn't a known security setting.")
    allowed = dict(spec.choices)
    if value not in allowed:
        options = ", ".join(f"{label} ({v})" for v, label in spec.choices)
        raise Invalid(
            f"“{value}” isn't a valid value for {spec.label}; choose {options}.",
        )
    now = timezone.now()
    # get_or_create under a savepoint: a concurrent first save of the same key
    # ends up updating that row rather than failing.
    current, created = SecuritySetting.objects.select_for_update().get_or_create(
        tenant=tenant, key=key, defaults={"value": value, "updated_at": now}
    )
    before = spec.default if created else current.value
    if before == value:
        # Nothing a reader can see changes (storing the default explicitly
        # included), so no timestamps move and nothing is audited. A stale
        # form asking for the value already in place is a double submit.
        return None
    if expected_value is not None and before != expected_value:
        # Raising rolls back the row get_or_create may just have inserted.
        raise Conflict(
            f"{spec.label} was changed to {allowed.get(before, before)} since you opened this page, so your change "
            "wasn't saved. Check the current value and save again.",
        )
    if not created:
        current.value = value
        current.updated_at = now
        current.save(update_fields=["value", "updated_at"])
    _touch_tenant(tenant, now)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.security_setting_set",
        summary=f"{spec.product}: {spec.label} changed from {allowed.get(before, before)} to {allowed[value]}",
        target=current,
        before={"key": key, "value": before},
        after={"key": key, "value": value},
    )
    return current


# --- Licences ---------------------------------------------------------------------------------


@transaction.atomic
def licence_set_seats(
    *, tenant: Tenant, acting_user: User | None, product: str, seats: int, expected_seats: int | None = None
) -> Licence | None:
    """Set the purchased seats of one product; returns the row, or None if unchanged.

    ``expected_seats`` is the count the admin saw: if it changed since,
    nothing is saved (``Conflict``).
    """
    if product not in LicenceProduct.values:
        raise Invalid(f"“{product}” isn't a licensed product.")
    if isinstance(seats, bool) or not isinstance(seats, int) or not 0 <= seats <= MAX_SEATS:
        raise Invalid(f"Enter a number of seats from 0 to {MAX_SEATS:,}.")
    now = timezone.now()
    licence, created = Licence.objects.select_for_update().get_or_create(
        tenant=tenant, product=product, defaults={"seats": 0, "updated_at": now}
    )
    before = licence.seats
    if before == seats:
        return None  # also a stale form asking for the count already in place: a double submit
    if expected_seats is not None and before != expected_seats:
        raise Conflict(
            f"{LicenceProduct(product).label} was changed to {before:,} seats since you opened this page, so your "
            "change wasn't saved. Check the current count and save again.",
        )
    licence.seats = seats
    licence.updated_at = now
    licence.save(update_fields=["seats", "updated_at"])
    _touch_tenant(tenant, now)
    label = LicenceProduct(product).label
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.licence_seats_set",
        summary=f"{label}: seats changed from {before:,} to {seats:,}",
        target=licence,
        before={"product": product, "seats": before},
        after={"product": product, "seats": seats},
    )
    return licence


# --- Directory (Entra ID) ----------------------------------------------------------------------


def _directory_user_snapshot(user: DirectoryUser) -> dict[str, Any]:
    return {
        "display_name": user.display_name,
        "user_principal_name": user.user_principal_name,
        "mail": user.mail,
        "enabled": user.enabled,
    }


def _locked_directory_user(tenant: Tenant, directory_user: DirectoryUser) -> DirectoryUser:
    try:
        return DirectoryUser.objects.select_for_update().get(pk=directory_user.pk, tenant=tenant)
    except DirectoryUser.DoesNotExist:
        raise Invalid("That user isn't in this organisation's directory.")


@transaction.atomic
def directory_user_set_enabled(
    *, tenant: Tenant, acting_user: User | None, directory_user: DirectoryUser, enabled: bool
) -> DirectoryUser:
    """Enable or disable sign-in for a directory user (a disabled identity isn't protected or licensed)."""
    user = _locked_directory_user(tenant, directory_user)
    if user.enabled == enabled:
        directory_user.enabled = enabled
        return user
    now = timezone.now()
    user.enabled = enabled
    user.updated_at = now
    user.save(update_fields=["enabled", "updated_at"])
    _touch_tenant(tenant, now)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.directory_user_enabled" if enabled else "environment.directory_user_disabled",
        summary=(
            f"{'Enabled' if enabled else 'Disabled'} the directory user "
            f"{user.display_name} ({user.user_principal_name})"
        ),
        target=user,
        before={"enabled": not enabled},
        after={"enabled": enabled},
    )
    directory_user.enabled = enabled
    directory_user.updated_at = now
    return user


@transaction.atomic
def directory_user_set_high_value(
    *, tenant: Tenant, acting_user: User | None, directory_user: DirectoryUser, high_value: bool
) -> DirectoryUser:
    """Tag (or untag) a directory user as high-value (a sensitive account, a priority account)."""
    user = _locked_directory_user(tenant, directory_user)
    if user.high_value == high_value:
        directory_user.high_value = high_value
        return user
    now = timezone.now()
    user.high_value = high_value
    user.updated_at = now
    user.save(update_fields=["high_value", "updated_at"])
    _touch_tenant(tenant, now)
    who = f"{user.display_name} ({user.user_principal_name})"
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.directory_user_high_value_set"
        if high_value
        else "environment.directory_user_high_value_cleared",
        summary=f"Tagged the directory user {who} as high value"
        if high_value
        else f"Removed the high-value tag from the directory user {who}",
        target=user,
        before={"high_value": not high_value},
        after={"high_value": high_value},
    )
    directory_user.high_value = high_value
    directory_user.updated_at = now
    return user


@transaction.atomic
def directory_user_delete(
    *,
    tenant: Tenant,
    acting_user: User | None,
    directory_user: DirectoryUser,
    expected_updated_at: datetime | None = None,
) -> None:
    """Delete a directory user.

    Other apps point at directory users with ``on_delete=SET_NULL`` and keep
    their own snapshot (e.g. a notification contact's name and address), so
    they keep working after the user is gone.

    ``expected_updated_at`` is the user's ``updated_at`` as the confirmation
    showed it: if the user changed since, nothing is deleted (the admin
    confirmed deleting what they saw, not what is there now).
    """
    user = _locked_directory_user(tenant, directory_user)
    if expected_updated_at is not None and user.updated_at != expected_updated_at:
        raise Conflict(
            f"{user.display_name} was changed since you opened this page, so nothing was deleted. "
            "Check the details below and delete the user again if you still mean to.",
        )
    snapshot = _directory_user_snapshot(user)
    groups = GroupMembership.objects.filter(user=user).count()
    now = timezone.now()
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.directory_user_deleted",
        summary=f"Deleted the directory user {user.display_name} ({user.user_principal_name})",
        target=user,
        before={**snapshot, "groups": groups},
        after=None,
    )
    # Groups lose a member: stamp them too, so readiness sees the change.
    DirectoryGroup.objects.filter(tenant=tenant, groupmembership__user=user).update(updated_at=now)
    user.delete()
    _touch_tenant(tenant, now)


@transaction.atomic
def directory_user_create(
    *,
    tenant: Tenant,
    acting_user: User | None,
    display_name: str,
    user_principal_name: str,
    mail: str = "",
    job_title: str = "",
    enabled: bool = True,
    domain_controller: DomainController | None = None,
) -> DirectoryUser:
    """Add a user to the directory (optionally a hybrid identity of a domain controller).

    A user with this name already there, identical in every field, is returned as it is (a double submit);
    one that differs is refused.
    """
    display_name = (display_name or "").strip()
    upn = (user_principal_name or "").strip().lower()
    mail = (mail or "").strip().lower()
    errors: dict[str, list[str]] = {}
    if not display_name:
        errors.setdefault("display_name", []).append("Enter a display name.")
    try:
        validate_email(upn)
    except ValidationError:
        errors.setdefault("user_principal_name", []).append("Enter a user principal name like name@contoso.example.")
    if mail:
        try:
            validate_email(mail)
        except ValidationError:
            errors.setdefault("mail", []).append("Enter a valid email address, or leave it empty.")
    if domain_controller is not None and domain_controller.tenant_id != tenant.pk:
        errors.setdefault("domain_controller", []).append("That domain controller isn't part of this organisation.")
    existing = (
        DirectoryUser.objects.filter(tenant=tenant, user_principal_name=upn).first()
        if "user_principal_name" not in errors
        else None
    )
    if existing is not None and not errors:
        same = (existing.display_name, existing.mail, existing.job_title, existing.enabled) == (
            display_name,
            mail,
            (job_title or "").strip(),
            enabled,
        ) and existing.domain_controller_id == (domain_controller.pk if domain_controller else None)
        if same:
            # The same form sent again (or two admins adding the same person): nothing to change.
            return existing
    if existing is not None:
        errors.setdefault("user_principal_name", []).append(f"A user with the name {upn} already exists.")
    if errors:
        raise Invalid(fields=errors)
    now = timezone.now()
    user = DirectoryUser.objects.create(
        tenant=tenant,
        display_name=display_name,
        user_principal_name=upn,
        mail=mail,
        job_title=(job_title or "").strip(),
        enabled=enabled,
        domain_controller=domain_controller,
        updated_at=now,
    )
    _touch_tenant(tenant, now)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.directory_user_created",
        summary=f"Added the directory user {display_name} ({upn})",
        target=user,
        after={
            **_directory_user_snapshot(user),
            "domain_controller": domain_controller.name if domain_controller else None,
        },
    )
    return user


@transaction.atomic
def directory_group_create(
    *,
    tenant: Tenant,
    acting_user: User | None,
    display_name: str,
    mail: str = "",
    mail_enabled: bool = False,
    security_enabled: bool = True,
    description: str = "",
    members: Sequence[DirectoryUser] = (),
    member_upns: Sequence[str] = (),
) -> DirectoryGroup:
    """Add a group; members (users, or their user principal names) are added in one bulk INSERT."""
    display_name = (display_name or "").strip()
    mail = (mail or "").strip().lower()
    errors: dict[str, list[str]] = {}
    if not display_name:
        errors.setdefault("display_name", []).append("Enter a display name.")
    elif DirectoryGroup.objects.filter(tenant=tenant, display_name__iexact=display_name).exists():
        errors.setdefault("display_name", []).append(f"A group named {display_name} already exists.")
    if mail_enabled and not mail:
        errors.setdefault("mail", []).append("A mail-enabled group needs an email address.")
    if mail:
        try:
            validate_email(mail)
        except ValidationError:
            errors.setdefault("mail", []).append("Enter a valid email address, or leave it empty.")
    if not mail_enabled and not security_enabled:
        errors.setdefault("security_enabled", []).append("A group must be mail-enabled, a security group, or both.")
    member_ids = sorted({m.pk for m in members})
    upns = sorted({upn.strip().lower() for upn in member_upns if upn.strip()})
    if upns:
        found = dict(
            DirectoryUser.objects.filter(tenant=tenant, user_principal_name__in=upns).values_list(
                "user_principal_name", "pk"
            )
        )
        unknown = [upn for upn in upns if upn not in found]
        if unknown:
            errors.setdefault("members", []).append(
                "No user in this organisation's directory has the name " + ", ".join(unknown[:5]) + "."
            )
        member_ids = sorted({*member_ids, *found.values()})
    if member_ids and DirectoryUser.objects.filter(tenant=tenant, pk__in=member_ids).count() != len(member_ids):
        errors.setdefault("members", []).append("Every member must be a user of this organisation's directory.")
    if errors:
        raise Invalid(fields=errors)
    now = timezone.now()
    group = DirectoryGroup.objects.create(
        tenant=tenant,
        display_name=display_name,
        mail=mail,
        mail_enabled=mail_enabled,
        security_enabled=security_enabled,
        description=(description or "").strip(),
        updated_at=now,
    )
    GroupMembership.objects.bulk_create([GroupMembership(group=group, user_id=pk) for pk in member_ids])
    _touch_tenant(tenant, now)
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.directory_group_created",
        summary=f"Added the group {display_name}" + (f" ({mail})" if mail else ""),
        target=group,
        after={
            "display_name": display_name,
            "mail": mail,
            "mail_enabled": mail_enabled,
            "security_enabled": security_enabled,
            "members": len(member_ids),
        },
    )
    return group


@transaction.atomic
def directory_users_set_enabled(
    *, tenant: Tenant, acting_user: User | None, directory_user_ids: Sequence[Any], enabled: bool
) -> int:
    """Enable or disable many directory users with one UPDATE; returns how many changed."""
    ids = _clean_ids(directory_user_ids)
    now = timezone.now()
    changed = (
        DirectoryUser.objects.filter(tenant=tenant, pk__in=ids)
        .exclude(enabled=enabled)
        .update(enabled=enabled, updated_at=now)
    )
    if not changed:
        return 0
    _touch_tenant(tenant, now)
    verb = "Enabled" if enabled else "Disabled"
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="environment.directory_users_enabled" if enabled else "environment.directory_users_disabled",
        summary=f"{verb} {changed:,} directory user{'s' if changed != 1 else ''}",
        before={"enabled": not enabled, "users": changed},
        after={"enabled": enabled, "users": changed, "selected": len(ids)},
    )
    return changed
