"""Onboarding: the welcome invitation and the tenant's progress through the
Get started guide."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class GuideStep(models.TextChoices):
    """The steps of Settings > Defender Experts > Get started, in order.

    The values double as URL slugs (``/get-started/<value>/``).
    """

    PERMISSIONS = "permissions", "Permissions"
    # The later document's step, reached from Permissions through Manage exclusions.
    EXCLUSIONS = "exclusions", "Exclusions"
    INCIDENT_CONTACT = "incident-contact", "Incident contact"
    SERVICE_REVIEW_CONTACT = "service-review-contact", "Service review contact"
    # The last step: its Close finishes the guide (the seed's "Select Close" on the Next steps page).
    NEXT_STEPS = "next-steps", "Next steps"


# The address of the former separate Close step: old links and bookmarks land on Next steps.
FORMER_CLOSE_SLUG = "close"


GUIDE_STEPS: tuple[GuideStep, ...] = tuple(GuideStep)
# Steps the guide doesn't require: reached by a link from the step before them (Permissions' Manage
# exclusions), never made the tenant's current step, and not needed to finish the guide.
OPTIONAL_STEPS: frozenset[GuideStep] = frozenset({GuideStep.EXCLUSIONS})
REQUIRED_STEPS: tuple[GuideStep, ...] = tuple(s for s in GUIDE_STEPS if s not in OPTIONAL_STEPS)

# The contacts steps and the notification type (contacts app) each one adds.
CONTACT_STEPS: dict[GuideStep, str] = {
    GuideStep.INCIDENT_CONTACT: "incident",
    GuideStep.SERVICE_REVIEW_CONTACT: "service_review",
}


def step_index(step: GuideStep | str) -> int:
    return GUIDE_STEPS.index(GuideStep(step))


def required_after(step: GuideStep | str) -> GuideStep | None:
    """The first required step after ``step`` (optional steps are passed over), if any."""
    for following in GUIDE_STEPS[step_index(step) + 1 :]:
        if following not in OPTIONAL_STEPS:
            return following
    return None


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def active(self) -> InvitationQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class Invitation(models.Model):
    """One welcome email's link.

    The link carries a signed random ``nonce``; the row makes the link
    revocable (``revoked_at``) and tells which tenant it opens. Sending the
    welcome email again creates a new row and revokes the tenant's earlier
    ones, so only the most recent link works.
    """

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="invitations")
    nonce = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A snapshot of the name shown on the console, kept if the user goes.
    invited_by_label = models.CharField(max_length=254)
    recipients = models.JSONField(default=list)
    is_resend = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    first_opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outbox_message = models.ForeignKey(
        "outbox.OutboxMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="onb_invitation_tenant_recent")]

    def __str__(self) -> str:
        return f"Invitation for {self.tenant_id} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "Replaced"
        if self.expires_at <= timezone.now():
            return "Expired"
        return "Active"


class GuideProgress(models.Model):
    """Where the tenant is in the Get started guide; shared by all its admins.

    ``version`` increases with every change so two admins working at the same
    time can't silently overwrite each other.
    """

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="guide_progress")
    current_step = models.CharField(max_length=32, choices=GuideStep.choices, default=GuideStep.PERMISSIONS)
    completed_steps = models.JSONField(default=list)
    version = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    finished_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "guide progress"

    def __str__(self) -> str:
        return f"Guide progress of tenant {self.tenant_id}: {self.current_step}"

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None

    def reaches(self, step: GuideStep | str) -> bool:
        """Steps up to the tenant's current one can be opened; all of them once finished. An optional step
        can be opened as soon as the step before it can (it is reached from there)."""
        index = step_index(step)
        if GuideStep(step) in OPTIONAL_STEPS:
            index -= 1
        return self.is_finished or index <= step_index(self.current_step)

    @property
    def completed_count(self) -> int:
        return len(set(self.completed_steps) & {s.value for s in REQUIRED_STEPS})
