from __future__ import annotations

from django.contrib import admin

from readiness.models import ActionStatus, ReadinessState, RefreshRun, Regression, Snapshot
from tenancy.admin_base import ReadOnlyAdmin


@admin.register(ReadinessState)
class ReadinessStateAdmin(ReadOnlyAdmin):
    list_display = (
        "tenant",
        "is_ready",
        "actions_completed",
        "actions_total",
        "last_refreshed_at",
        "next_refresh_at",
        "generation",
        "lease_expires_at",
    )
    list_select_related = ("tenant",)
    search_fields = ("tenant__name",)


@admin.register(ActionStatus)
class ActionStatusAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "key", "status", "last_status_change", "last_checked_at")
    list_filter = ("status", "key")
    list_select_related = ("tenant",)


@admin.register(RefreshRun)
class RefreshRunAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "started_at", "duration_ms", "trigger", "outcome", "regressions_found")
    list_filter = ("outcome", "trigger")
    list_select_related = ("tenant",)


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "taken_at", "actions_completed", "devices_protected", "identities_protected", "is_ready")
    list_select_related = ("tenant",)


@admin.register(Regression)
class RegressionAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "title", "detected_at", "resolved_at")
    list_select_related = ("tenant",)
