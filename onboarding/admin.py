from django.contrib import admin

from onboarding.models import GuideProgress, Invitation


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["tenant", "created_at", "invited_by_label", "expires_at", "revoked_at", "first_opened_at"]
    list_filter = ["is_resend"]
    # The nonce is the link's secret: never shown, never editable here.
    exclude = ["nonce"]
    readonly_fields = [f.name for f in Invitation._meta.fields if f.name != "nonce"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(GuideProgress)
class GuideProgressAdmin(admin.ModelAdmin):
    list_display = ["tenant", "current_step", "version", "updated_at", "finished_at"]
    readonly_fields = [f.name for f in GuideProgress._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
