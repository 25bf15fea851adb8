"""Django admin for the portal's operators: the same changes as the Environment area.

State changes (onboarding, antivirus mode, sensors, settings, seats, enabling
and deleting users) go through ``environment.services``, so they are audited
in the tenant's log, stamped and done with bulk SQL exactly as in the portal.
Admin actions on a selection spanning several tenants call the service once
per tenant. Everything else is read-only, and no row ever changes tenant.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from core.errors import ApplicationError
from environment import services
from environment.models import (
    AntivirusMode,
    Device,
    DeviceGroup,
    DirectoryGroup,
    DirectoryUser,
    DomainController,
    Licence,
    SecuritySetting,
)
from environment.security_settings import SETTINGS, SETTINGS_BY_KEY
from tenancy.admin_base import OperatorAdmin, ReadOnlyAdmin
from tenancy.models import Tenant, User


def _ids_by_tenant(queryset: QuerySet[Any]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for tenant_id, pk in queryset.order_by().values_list("tenant_id", "pk"):
        grouped[tenant_id].append(pk)
    return grouped


def _actor(request: HttpRequest) -> User:
    # The admin only serves signed-in operators.
    return cast(User, request.user)


def _tenants(ids: Any) -> dict[int, Tenant]:
    return Tenant.objects.in_bulk(list(ids))


@admin.register(DeviceGroup)
class DeviceGroupAdmin(ReadOnlyAdmin):
    list_display = ["name", "tenant", "rank", "device_count", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeviceGroup]:
        return super().get_queryset(request).select_related("tenant").annotate(n_devices=Count("devices"))

    @admin.display(ordering="n_devices", description="Devices")
    def device_count(self, obj: Any) -> int:
        return obj.n_devices


@admin.register(Device)
class DeviceAdmin(OperatorAdmin):
    list_display = ["name", "tenant", "os_platform", "device_group", "onboarding_state", "av_mode", "last_seen"]
    list_filter = ["tenant", "onboarding_state", "av_mode", "os_platform", "device_group"]
    search_fields = ["name"]
    list_select_related = ["tenant", "device_group"]
    list_per_page = 100
    show_full_result_count = False
    # State changes only through the actions below (audited, bulk SQL).
    readonly_fields = [
        "tenant", "name", "os_platform", "device_group", "onboarding_state", "av_mode",
        "last_seen", "onboarded_at", "updated_at",
    ]  # fmt: skip
    actions = ["onboard", "set_active", "set_passive", "set_disabled"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewable here; changed only through the actions (audited): a change form would save unaudited.
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(description="Onboard selected devices to Defender for Endpoint", permissions=["change"])
    def onboard(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        grouped = _ids_by_tenant(queryset)
        tenants = _tenants(grouped)
        total: int = sum(
            services.devices_onboard(tenant=tenants[tid], acting_user=_actor(request), device_ids=ids)
            for tid, ids in grouped.items()
        )
        self.message_user(request, f"Onboarded {total:,} devices.", messages.SUCCESS)

    def _set_mode(self, request: HttpRequest, queryset: QuerySet[Device], mode: str) -> None:
        grouped = _ids_by_tenant(queryset)
        tenants = _tenants(grouped)
        total: int = sum(
            services.devices_set_antivirus_mode(
                tenant=tenants[tid],
                acting_user=_actor(request),
                mode=mode,
                device_ids=ids,
            )
            for tid, ids in grouped.items()
        )
        self.message_user(request, f"Defender Antivirus set to {mode} mode on {total:,} devices.", messages.SUCCESS)

    @admin.action(description="Set Defender Antivirus to active mode", permissions=["change"])
    def set_active(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        self._set_mode(request, queryset, AntivirusMode.ACTIVE)

    @admin.action(description="Set Defender Antivirus to passive mode", permissions=["change"])
    def set_passive(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        self._set_mode(request, queryset, AntivirusMode.PASSIVE)

    @admin.action(description="Set Defender Antivirus to disabled", permissions=["change"])
    def set_disabled(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        self._set_mode(request, queryset, AntivirusMode.DISABLED)


@admin.register(DomainController)
class DomainControllerAdmin(OperatorAdmin):
    list_display = ["name", "tenant", "domain", "sensor_installed", "identity_count", "sensor_installed_at"]
    list_filter = ["tenant", "sensor_installed"]
    search_fields = ["name", "domain"]
    # Viewable here; the sensor changes only through the actions (audited).
    actions = ["install_sensor", "uninstall_sensor"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[DomainController]:
        return super().get_queryset(request).select_related("tenant").annotate(n_identities=Count("identities"))

    @admin.display(ordering="n_identities", description="Identities")
    def identity_count(self, obj: Any) -> int:
        return obj.n_identities

    def _sensor(self, request: HttpRequest, queryset: QuerySet[DomainController], install: bool) -> None:
        service = services.domain_controller_install_sensor if install else services.domain_controller_uninstall_sensor
        done = 0
        for dc in queryset.select_related("tenant"):  # a handful of rows; each change is audited on its own
            try:
                service(tenant=dc.tenant, acting_user=_actor(request), domain_controller=dc)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.WARNING)
        verb = "installed on" if install else "removed from"
        self.message_user(request, f"Sensor {verb} {done} domain controller(s).", messages.SUCCESS)

    @admin.action(description="Install the Defender for Identity sensor", permissions=["change"])
    def install_sensor(self, request: HttpRequest, queryset: QuerySet[DomainController]) -> None:
        self._sensor(request, queryset, True)

    @admin.action(description="Remove the Defender for Identity sensor", permissions=["change"])
    def uninstall_sensor(self, request: HttpRequest, queryset: QuerySet[DomainController]) -> None:
        self._sensor(request, queryset, False)


class SecuritySettingForm(forms.ModelForm):
    key = forms.ChoiceField(choices=[(s.key, f"{s.product}: {s.label}") for s in SETTINGS])

    class Meta:
        model = SecuritySetting
        fields = ["tenant", "key", "value"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        spec = SETTINGS_BY_KEY.get(data.get("key", ""))
        if spec is not None and data.get("value") not in dict(spec.choices):
            self.add_error("value", "Choose one of: " + ", ".join(v for v, _ in spec.choices) + ".")
        return data


@admin.register(SecuritySetting)
class SecuritySettingAdmin(OperatorAdmin):
    form = SecuritySettingForm
    list_display = ["key", "value", "tenant", "updated_at"]
    list_filter = ["tenant", "key"]
    list_select_related = ["tenant"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["tenant", "key", "updated_at"] if obj is not None else ["updated_at"]

    def save_model(self, request: HttpRequest, obj: SecuritySetting, form: Any, change: bool) -> None:
        row = services.security_setting_set(
            tenant=obj.tenant,
            acting_user=_actor(request),
            key=obj.key,
            value=obj.value,
        )
        if row is not None:
            obj.pk, obj.updated_at = row.pk, row.updated_at
        else:
            obj.pk = SecuritySetting.objects.filter(tenant=obj.tenant, key=obj.key).values_list("pk", flat=True).first()


class LicenceForm(forms.ModelForm):
    # The service's bounds, so an out-of-range count is a form error, not a 500.
    seats = forms.IntegerField(min_value=0, max_value=services.MAX_SEATS)

    class Meta:
        model = Licence
        fields = ["tenant", "product", "seats"]


@admin.register(Licence)
class LicenceAdmin(OperatorAdmin):
    form = LicenceForm
    list_display = ["product", "seats", "tenant", "updated_at"]
    list_filter = ["tenant", "product"]
    list_select_related = ["tenant"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["tenant", "product", "updated_at"] if obj is not None else ["updated_at"]

    def save_model(self, request: HttpRequest, obj: Licence, form: Any, change: bool) -> None:
        row = services.licence_set_seats(
            tenant=obj.tenant,
            acting_user=_actor(request),
            product=obj.product,
            seats=obj.seats,
        )
        obj.pk = row.pk if row is not None else Licence.objects.get(tenant=obj.tenant, product=obj.product).pk


@admin.register(DirectoryUser)
class DirectoryUserAdmin(OperatorAdmin):
    list_display = ["display_name", "user_principal_name", "tenant", "enabled", "domain_controller"]
    list_filter = ["tenant", "enabled", "domain_controller"]
    search_fields = ["search_text", "user_principal_name"]
    list_select_related = ["tenant", "domain_controller"]
    readonly_fields = ["tenant", "enabled", "search_text", "updated_at"]
    fields = ["tenant", "display_name", "user_principal_name", "mail", "job_title", "domain_controller", "enabled"]
    actions = ["enable", "disable", "delete_users"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # New users are added in the Environment area (service-validated).
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewable here; changed only through the actions (audited).
        return obj is None and super().has_change_permission(request, obj)

    def _enabled(self, request: HttpRequest, queryset: QuerySet[DirectoryUser], enabled: bool) -> None:
        grouped = _ids_by_tenant(queryset)
        tenants = _tenants(grouped)
        total: int = sum(
            services.directory_users_set_enabled(
                tenant=tenants[tid],
                acting_user=_actor(request),
                directory_user_ids=ids,
                enabled=enabled,
            )
            for tid, ids in grouped.items()
        )
        self.message_user(request, f"{'Enabled' if enabled else 'Disabled'} {total:,} users.", messages.SUCCESS)

    @admin.action(description="Enable selected users", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[DirectoryUser]) -> None:
        self._enabled(request, queryset, True)

    @admin.action(description="Disable selected users", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[DirectoryUser]) -> None:
        self._enabled(request, queryset, False)

    @admin.action(description="Delete selected users (audited)", permissions=["change"])
    def delete_users(self, request: HttpRequest, queryset: QuerySet[DirectoryUser]) -> None:
        done = 0
        # Each deletion is its own audited change with the user's snapshot.
        for user in queryset.select_related("tenant")[:500]:
            services.directory_user_delete(tenant=user.tenant, acting_user=_actor(request), directory_user=user)
            done += 1
        self.message_user(request, f"Deleted {done} users.", messages.SUCCESS)


@admin.register(DirectoryGroup)
class DirectoryGroupAdmin(ReadOnlyAdmin):
    list_display = ["display_name", "tenant", "mail", "mail_enabled", "security_enabled", "member_count"]
    list_filter = ["tenant", "mail_enabled", "security_enabled"]
    search_fields = ["search_text"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DirectoryGroup]:
        return super().get_queryset(request).select_related("tenant").annotate(n_members=Count("groupmembership"))

    @admin.display(ordering="n_members", description="Members")
    def member_count(self, obj: Any) -> int:
        return obj.n_members
