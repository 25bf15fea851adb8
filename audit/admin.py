from django.contrib import admin

from audit.models import AuditEvent
from tenancy.admin_base import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the audit trail cannot be edited, not even here."""

    list_display = ["created_at", "tenant", "actor_label", "action", "summary"]
    list_filter = ["action", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["summary", "actor_label"]
