"""Devices and users that the provider's experts only advise on.

A tenant excludes Defender for Endpoint device groups and Entra ID security groups from remediation
actions: for the devices in those groups and the cloud users in those security groups, the experts
give remediation guidance instead of acting. Optionally every high-value device and user is excluded
too, including those tagged later. What these rows mean for the experts is decided in
``permissions/evaluator.py`` (``can_experts``); the rows themselves are written only by
``exclusions/services.py``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ExclusionSettings(models.Model):
    """The tenant's exclusion list as one versioned whole: every change bumps ``version``."""

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="exclusion_settings")
    exclude_high_value = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "exclusion settings"

    def __str__(self) -> str:
        return f"Exclusions of tenant {self.tenant_id} (version {self.version})"


class ExcludedGroup(models.Model):
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey("tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)
    # Added in the Get started guide's Exclusions step and not confirmed yet: the step's Skip
    # discards these, its Next keeps them (clears the flag). Effective from the moment they're added.
    added_in_guide = models.BooleanField(default=False)

    class Meta:
        abstract = True


class ExcludedDeviceGroup(ExcludedGroup):
    device_group = models.ForeignKey("environment.DeviceGroup", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "device_group"], name="excluded_device_group_unique")]

    def __str__(self) -> str:
        return f"Device group {self.device_group_id} excluded in tenant {self.tenant_id}"


class ExcludedUserGroup(ExcludedGroup):
    directory_group = models.ForeignKey("environment.DirectoryGroup", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "directory_group"], name="excluded_user_group_unique")]

    def __str__(self) -> str:
        return f"User group {self.directory_group_id} excluded in tenant {self.tenant_id}"
