from django.contrib import admin

from outbox.models import OutboxAttempt, OutboxMessage


class AttemptInline(admin.TabularInline):
    model = OutboxAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "started_at", "finished_at", "outcome", "error", "worker"]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tenant", "kind", "subject", "status", "attempts"]
    list_filter = ["status", "kind"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
    inlines = [AttemptInline]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
