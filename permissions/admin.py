"""Read-only admin: access changes go through the services so they are versioned and audited."""

from __future__ import annotations

from django.contrib import admin

from permissions.models import AccessGrant, ServiceProviderAccess
from tenancy.admin_base import ReadOnlyAdmin, ReadOnlyInline


class GrantInline(ReadOnlyInline):
    model = AccessGrant
    fields = ("level", "role", "starts_at", "ends_at", "revoked_at", "revoked_reason", "reminder_sent_at")
    readonly_fields = fields


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
