from django.contrib import admin

from onboarding.models import GuideProgress, Invitation
from tenancy.admin_base import ReadOnlyAdmin


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "created_at", "invited_by_label", "expires_at", "revoked_at", "first_opened_at"]
    list_filter = ["is_resend"]
    list_select_related = ["tenant"]
    # The nonce is the link's secret: never shown here.
    exclude = ["nonce"]


@admin.register(GuideProgress)
class GuideProgressAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "current_step", "version", "updated_at", "finished_at"]
    list_select_related = ["tenant"]
