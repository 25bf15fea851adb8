"""Read-only admin: access changes go through the services so they are versioned and audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from permissions.models import AccessGrant, ServiceProviderAccess


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class GrantInline(admin.TabularInline):
    model = AccessGrant
    extra = 0
    can_delete = False
    fields = ("level", "role", "starts_at", "ends_at", "revoked_at", "revoked_reason", "reminder_sent_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ServiceProviderAccess)
class ServiceProviderAccessAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "provider", "state", "all_devices", "granted_at", "version"]
    list_filter = ["state", "all_devices"]
    list_select_related = ["tenant", "provider"]
    inlines = [GrantInline]


@admin.register(AccessGrant)
class AccessGrantAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "level", "role", "starts_at", "ends_at", "revoked_at", "revoked_reason"]
    list_filter = ["level", "revoked_reason"]
    list_select_related = ["tenant"]
