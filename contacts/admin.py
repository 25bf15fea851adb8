from django.contrib import admin

from contacts.models import NotificationContact


@admin.register(NotificationContact)
class NotificationContactAdmin(admin.ModelAdmin):
    list_display = ("display_name", "email", "tenant", "notification_type", "position", "phone", "removed_at")
    list_filter = ("notification_type", "kind")
    search_fields = ("display_name", "email", "tenant__name")
    raw_id_fields = ("tenant", "directory_user", "directory_group", "added_by", "welcome_message")
    # Changes go through the services (audited, emailed); the admin only reads.
    readonly_fields = [f.name for f in NotificationContact._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
