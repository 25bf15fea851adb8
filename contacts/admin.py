from django.contrib import admin

from contacts.models import NotificationContact
from tenancy.admin_base import ReadOnlyAdmin


@admin.register(NotificationContact)
class NotificationContactAdmin(ReadOnlyAdmin):
    # Changes go through the services (audited, emailed); the admin only reads.
    list_display = ("display_name", "email", "tenant", "notification_type", "position", "phone", "removed_at")
    list_filter = ("notification_type", "kind")
    list_select_related = ("tenant",)
    search_fields = ("display_name", "email", "tenant__name")
