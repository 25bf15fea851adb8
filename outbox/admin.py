from django.contrib import admin

from outbox.models import OutboxAttempt, OutboxMessage
from tenancy.admin_base import ReadOnlyAdmin, ReadOnlyInline


class AttemptInline(ReadOnlyInline):
    model = OutboxAttempt
    fields = ["number", "started_at", "finished_at", "outcome", "error", "worker"]
    readonly_fields = ["number", "started_at", "finished_at", "outcome", "error", "worker"]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    # Retries and resends happen in the provider's Outbox (audited).
    list_display = ["created_at", "tenant", "kind", "subject", "status", "attempts"]
    list_filter = ["status", "kind"]
    list_select_related = ["tenant"]
    inlines = [AttemptInline]
