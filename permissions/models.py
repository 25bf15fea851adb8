"""Service provider access and the access levels granted through it.

The customer's tenant trusts the provider organisation through one
*relationship* (``ServiceProviderAccess``), the emulated counterpart of an
Entra cross-tenant access / delegated admin relationship. Each access level
the admin turns on is an ``AccessGrant`` of one role through that
relationship, always time-bound.

Lifecycle decision (documented here because the guide relies on it): the
relationship row is created lazily, in state PENDING, the first time anyone
reads or changes a tenant's permissions. PENDING means "required by default
but not granted yet": the evaluator refuses everything. It becomes ACTIVE when
an admin grants an access level (in the Get started guide or on the
Permissions page), REMOVED when an admin removes provider access, and ACTIVE
again when an admin restores it. Grants are never deleted; ending one sets
``revoked_at`` and ``revoked_reason`` so the history stays readable.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class AccessState(models.TextChoices):
    PENDING = "pending", "Not granted yet"
    ACTIVE = "active", "Active"
    REMOVED = "removed", "Removed"


class AccessLevel(models.TextChoices):
    """The two access levels, in the seed's words."""

    INVESTIGATE = "investigate", "Investigate incidents and guide my responses"
    RESPOND = "respond", "Respond directly to active threats"


class GrantRole(models.TextChoices):
    SECURITY_READER = "security_reader", "Security Reader"
    SECURITY_OPERATOR = "security_operator", "Security Operator"


# The role each access level assigns through the relationship (seed: "Access level: ...").
LEVEL_ROLE: dict[str, str] = {
    AccessLevel.INVESTIGATE: GrantRole.SECURITY_READER,
    AccessLevel.RESPOND: GrantRole.SECURITY_OPERATOR,
}


class RevokedReason(models.TextChoices):
    TURNED_OFF = "turned_off", "Turned off by an administrator"
    EXPIRED = "expired", "Reached its end date"
    ACCESS_REMOVED = "access_removed", "Service provider access was removed"


class ServiceProviderAccess(models.Model):
    """The cross-tenant relationship between one tenant and its provider."""

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="provider_access")
    provider = models.ForeignKey("tenancy.ProviderOrganization", on_delete=models.PROTECT, related_name="tenant_access")
    state = models.CharField(max_length=10, choices=AccessState.choices, default=AccessState.PENDING)
    # The seed: "Access security data from all devices" is on by default.
    all_devices = models.BooleanField(default=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    # Optimistic concurrency: every change bumps it; every form carries it.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "service provider access"
        verbose_name_plural = "service provider access"

    def __str__(self) -> str:
        return f"{self.provider_id} → {self.tenant_id} ({self.get_state_display()})"


class AccessGrant(models.Model):
    """One access level granted through the relationship, for a limited time."""

    access = models.ForeignKey(ServiceProviderAccess, on_delete=models.CASCADE, related_name="grants")
    # Denormalised from ``access`` so views can scope with get_tenant_object_or_404.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="access_grants")
    level = models.CharField(max_length=12, choices=AccessLevel.choices)
    role = models.CharField(max_length=20, choices=GrantRole.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    renewed_at = models.DateTimeField(null=True, blank=True)
    renewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=20, choices=RevokedReason.choices, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set when the 7-day expiry reminder was queued for the current ends_at;
    # cleared by a renewal so the new end date gets its own reminder.
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["level", "-starts_at", "-id"]
        constraints = [
            # At most one live grant per level: a second concurrent "turn on" fails instead of duplicating.
            models.UniqueConstraint(
                fields=["access", "level"], condition=Q(revoked_at__isnull=True), name="grant_one_live_per_level"
            ),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="grant_ends_after_start"),
        ]
        indexes = [
            # The expiry and reminder sweeps scan live grants by end date.
            models.Index(fields=["ends_at"], condition=Q(revoked_at__isnull=True), name="grant_live_by_end"),
            models.Index(fields=["tenant", "level", "-starts_at"], name="grant_tenant_level"),
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()} ({self.get_role_display()}) until {self.ends_at:%Y-%m-%d}"
