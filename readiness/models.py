"""The readiness assessment: what the last refresh found, when the next one is due,
and the history of refreshes.

The figures shown on Settings > Defender Experts > Service status are the ones
stored here by the last *refresh*, not live counts: like the real service, a
change in the environment only shows once a refresh has picked it up (within
``READINESS_MAX_DELAY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from environment.models import DEVICE_GAPS, IDENTITY_GAPS


class ActionState(models.TextChoices):
    """Where an action stands. How much it matters is its priority (``Priority``), a separate column."""

    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


class Priority(models.TextChoices):
    """Required actions are "Complete now": readiness is met only once they are all completed."""

    COMPLETE_NOW = "complete_now", "Complete now"
    RECOMMENDED = "recommended", "Recommended"


@dataclass(frozen=True)
class AssetReason:
    """One reason assets are still to protect, with how many it holds.

    ``key`` names the drill-down list behind the number (``readiness:devices`` /
    ``readiness:identities``); ``NOT_PRESENT`` has none: those assets don't exist yet.
    """

    key: str
    label: str
    count: int

    @property
    def listed(self) -> bool:
        return self.key != NOT_PRESENT


NOT_PRESENT = "not_present"


@dataclass(frozen=True)
class AssetBreakdown:
    """Protected assets against their target, and the reasons the rest aren't protected yet.

    The headline, ``to_protect``, is the sum of the reasons by construction: every existing asset
    that isn't protected (each has exactly one reason), plus the licences with no asset behind them
    yet. While the assets don't outnumber the licences this is the target minus the protected ones.
    """

    noun: str
    protected: int
    target: int
    present: int
    reasons: tuple[AssetReason, ...]

    @property
    def to_protect(self) -> int:
        return sum(r.count for r in self.reasons)

    @property
    def unprotected(self) -> int:
        return sum(r.count for r in self.reasons if r.listed)


def _breakdown(noun: str, protected: int, target: int, gaps: list[AssetReason]) -> AssetBreakdown:
    present = protected + sum(r.count for r in gaps)
    missing = AssetReason(NOT_PRESENT, "licensed but not yet present", max(target - present, 0))
    return AssetBreakdown(noun, protected, target, present, (*gaps, missing))


def _default_delay() -> timedelta:
    return timedelta(seconds=settings.READINESS_MAX_DELAY)


class ReadinessState(models.Model):
    """One row per tenant: the schedule of its refreshes and the figures of the last one."""

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="readiness_state")
    catalogue_version = models.CharField(max_length=40, blank=True)

    # --- Schedule (the due time lives here, never in a broker countdown) ---
    next_refresh_at = models.DateTimeField(default=timezone.now)
    # This tenant's jittered pick-up delay for the next environment change,
    # drawn between READINESS_MIN_DELAY and READINESS_MAX_DELAY at each refresh.
    delay = models.DurationField(default=_default_delay)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    # The tenant's environment_changed_at as the last refresh read it, *before*
    # reading the environment: any change committed later moves the tenant's
    # value past this one, so it is never missed, however the two interleave.
    environment_seen_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every claim; a refresh task carries the generation it was
    # enqueued for and does nothing if the state has moved on.
    generation = models.PositiveBigIntegerField(default=0)
    completed_generation = models.PositiveBigIntegerField(default=0)
    claim_token = models.UUIDField(null=True, blank=True)
    # A claimed refresh that has not finished by then is reclaimed by the sweep
    # (the worker died, or the broker lost the message).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_requested_at = models.DateTimeField(null=True, blank=True)
    refresh_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # --- Figures of the last refresh ---
    actions_total = models.PositiveIntegerField(default=0)
    actions_completed = models.PositiveIntegerField(default=0)
    actions_in_progress = models.PositiveIntegerField(default=0)
    actions_not_started = models.PositiveIntegerField(default=0)
    devices_total = models.PositiveIntegerField(default=0)
    devices_onboarded = models.PositiveIntegerField(default=0)
    devices_protected = models.PositiveIntegerField(default=0)
    devices_not_onboarded = models.PositiveIntegerField(default=0)
    devices_passive = models.PositiveIntegerField(default=0)
    devices_disabled = models.PositiveIntegerField(default=0)
    devices_target = models.PositiveIntegerField(default=0)
    identities_total = models.PositiveIntegerField(default=0)
    identities_protected = models.PositiveIntegerField(default=0)
    identities_target = models.PositiveIntegerField(default=0)
    domain_controllers_total = models.PositiveIntegerField(default=0)
    domain_controllers_with_sensor = models.PositiveIntegerField(default=0)
    enabled_users = models.PositiveIntegerField(default=0)
    is_ready = models.BooleanField(default=False)
    ready_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["next_refresh_at"], name="readiness_state_due")]

    def __str__(self) -> str:
        return f"Readiness of tenant {self.tenant_id}"

    @property
    def has_refreshed(self) -> bool:
        return self.last_refreshed_at is not None

    @property
    def device_breakdown(self) -> AssetBreakdown:
        figures = {
            "not_onboarded": self.devices_not_onboarded,
            "passive": self.devices_passive,
            "disabled": self.devices_disabled,
        }
        gaps = [AssetReason(key, label, figures[key]) for key, (label, _) in DEVICE_GAPS.items()]
        return _breakdown("devices", self.devices_protected, self.devices_target, gaps)

    @property
    def identity_breakdown(self) -> AssetBreakdown:
        figures = {"no_sensor": self.identities_total - self.identities_protected}
        gaps = [AssetReason(key, label, figures[key]) for key, (label, _) in IDENTITY_GAPS.items()]
        return _breakdown("identities", self.identities_protected, self.identities_target, gaps)

    @property
    def devices_to_protect(self) -> int:
        return self.device_breakdown.to_protect

    @property
    def identities_to_protect(self) -> int:
        return self.identity_breakdown.to_protect

    @property
    def devices_unprotected(self) -> int:
        return self.device_breakdown.unprotected

    @property
    def identities_unprotected(self) -> int:
        return self.identity_breakdown.unprotected

    @property
    def domain_controllers_without_sensor(self) -> int:
        return self.domain_controllers_total - self.domain_controllers_with_sensor

    @property
    def devices_target_met(self) -> bool:
        return self.devices_target > 0 and self.devices_protected >= self.devices_target

    @property
    def identities_target_met(self) -> bool:
        return self.identities_target > 0 and self.identities_protected >= self.identities_target


class ActionStatus(models.Model):
    """The status of one catalogue action for one tenant, as of the last refresh."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="readiness_actions")
    key = models.CharField(max_length=80)
    status = models.CharField(max_length=20, choices=ActionState.choices)
    last_status_change = models.DateTimeField()
    last_checked_at = models.DateTimeField()
    # What the rule counted (devices in active mode of those onboarded, ...), if it counts.
    done = models.PositiveIntegerField(null=True, blank=True)
    total = models.PositiveIntegerField(null=True, blank=True)
    value = models.CharField(max_length=80, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="readiness_action_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}: {self.status}"


class RunOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    SKIPPED = "skipped", "Skipped (already done)"
    FAILED = "failed", "Failed (retried)"
    LOST = "lost", "Worker lost (reclaimed)"
    # The run stopped reporting (its failure could not be recorded) and a retry
    # of the same or a later claim finished the refresh.
    SUPERSEDED = "superseded", "Superseded (a retry finished it)"


class RunTrigger(models.TextChoices):
    FIRST = "first", "First assessment"
    SCHEDULED = "scheduled", "Scheduled (daily)"
    ENVIRONMENT = "environment", "Environment change"
    ACCESS = "access", "Service provider access change"
    REQUESTED = "requested", "Requested by an admin"


class RefreshRun(models.Model):
    """One attempt at refreshing one tenant's assessment."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="readiness_runs")
    generation = models.PositiveBigIntegerField()
    trigger = models.CharField(max_length=20, choices=RunTrigger.choices, default=RunTrigger.SCHEDULED)
    outcome = models.CharField(max_length=20, choices=RunOutcome.choices, default=RunOutcome.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    actions_completed = models.PositiveIntegerField(null=True, blank=True)
    actions_total = models.PositiveIntegerField(null=True, blank=True)
    devices_protected = models.PositiveIntegerField(null=True, blank=True)
    devices_total = models.PositiveIntegerField(null=True, blank=True)
    # The targets the customer sees (their licences), which the provider's pages count against too.
    devices_target = models.PositiveIntegerField(null=True, blank=True)
    identities_protected = models.PositiveIntegerField(null=True, blank=True)
    identities_total = models.PositiveIntegerField(null=True, blank=True)
    identities_target = models.PositiveIntegerField(null=True, blank=True)
    regressions_found = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-started_at"], name="readiness_run_tenant_recent"),
            models.Index(fields=["-started_at"], name="readiness_run_recent"),
            models.Index(fields=["outcome"], name="readiness_run_outcome"),
        ]

    def __str__(self) -> str:
        return f"Refresh of tenant {self.tenant_id} at {self.started_at:%Y-%m-%d %H:%M} ({self.outcome})"


class Snapshot(models.Model):
    """The headline figures of one successful refresh: one point of the history chart."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="readiness_snapshots")
    run = models.OneToOneField(RefreshRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="snapshot")
    taken_at = models.DateTimeField()
    actions_total = models.PositiveIntegerField()
    actions_completed = models.PositiveIntegerField()
    actions_in_progress = models.PositiveIntegerField()
    devices_protected = models.PositiveIntegerField()
    devices_target = models.PositiveIntegerField()
    identities_protected = models.PositiveIntegerField()
    identities_target = models.PositiveIntegerField()
    is_ready = models.BooleanField()

    class Meta:
        ordering = ["-taken_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-taken_at"], name="readiness_snapshot_recent")]

    def __str__(self) -> str:
        return f"Readiness of tenant {self.tenant_id} at {self.taken_at:%Y-%m-%d %H:%M}"


class Regression(models.Model):
    """Readiness got worse after the service started; open until it is fixed."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="readiness_regressions")
    key = models.CharField(max_length=80)
    title = models.CharField(max_length=200)
    detail = models.CharField(max_length=500)
    # For asset regressions: the number of unprotected items before it began.
    baseline = models.PositiveIntegerField(null=True, blank=True)
    detected_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"], condition=Q(resolved_at__isnull=True), name="readiness_one_open_regression"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({'open' if self.resolved_at is None else 'resolved'})"
