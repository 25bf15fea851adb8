"""The tenancy core: who the customer organisations and the provider are, and
who may act for them.

A *tenant* is a customer organisation onboarding to Defender Experts. The
*provider organisation* is the Defender Experts team; its staff use a separate
provider area and never act as members of a tenant.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in to the portal with email and password."""

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    # Django admin access only; unrelated to tenant roles.
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.display_name or self.email

    def get_full_name(self) -> str:
        return self.display_name

    def get_short_name(self) -> str:
        return self.display_name.split(" ")[0] if self.display_name else self.email


class ProviderOrganization(models.Model):
    """The managed service provider: the Defender Experts team."""

    name = models.CharField(max_length=200, unique=True)
    domain = models.CharField(max_length=253, unique=True)
    # The provider's own directory tenant id, as a cross-tenant partner would see it.
    directory_tenant_id = models.UUIDField(default=uuid.uuid4, unique=True)

    def __str__(self) -> str:
        return self.name


class ProviderRole(models.TextChoices):
    SERVICE_DELIVERY_MANAGER = "service_delivery_manager", "Service delivery manager"
    ANALYST = "analyst", "Security analyst"


class ProviderStaff(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="provider_staff")
    organization = models.ForeignKey(ProviderOrganization, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(max_length=40, choices=ProviderRole.choices)

    class Meta:
        verbose_name_plural = "provider staff"

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"

    @property
    def is_service_delivery_manager(self) -> bool:
        return self.role == ProviderRole.SERVICE_DELIVERY_MANAGER


class ServicePhase(models.TextChoices):
    """Where a tenant is on its way to the Defender Experts service."""

    NOT_INVITED = "not_invited", "Not invited"
    INVITED = "invited", "Invited"
    SETTING_UP = "setting_up", "Setting up"
    PREPARING = "preparing", "Preparing"
    MONITORING = "monitoring", "Monitoring"
    ACTIVE = "active", "Active"


class Tenant(models.Model):
    """A customer organisation and its (emulated) Microsoft environment."""

    name = models.CharField(max_length=200)
    primary_domain = models.CharField(max_length=253, unique=True)
    directory_tenant_id = models.UUIDField(default=uuid.uuid4, unique=True)
    provider = models.ForeignKey(ProviderOrganization, on_delete=models.PROTECT, related_name="tenants")
    service_phase = models.CharField(max_length=20, choices=ServicePhase.choices, default=ServicePhase.NOT_INVITED)
    service_phase_changed_at = models.DateTimeField(default=timezone.now)
    # Bumped by every environment change, so the readiness refresh can tell
    # whether anything moved since it last looked.
    environment_changed_at = models.DateTimeField(default=timezone.now)
    # Members whose role can change settings must sign in with a second factor.
    require_mfa_for_admins = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        # The provider console lists a provider's tenants by name.
        indexes = [models.Index(fields=["provider", "name"], name="tenant_provider_name")]

    def __str__(self) -> str:
        return self.name


class TenantRole(models.TextChoices):
    """Entra-style directory roles a member holds in a tenant."""

    GLOBAL_ADMINISTRATOR = "global_administrator", "Global Administrator"
    SECURITY_ADMINISTRATOR = "security_administrator", "Security Administrator"
    SECURITY_OPERATOR = "security_operator", "Security Operator"
    SECURITY_READER = "security_reader", "Security Reader"


# Only these roles may change Defender Experts settings; the others view them.
MANAGING_ROLES = frozenset({TenantRole.GLOBAL_ADMINISTRATOR, TenantRole.SECURITY_ADMINISTRATOR})


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=40, choices=TenantRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")]
        ordering = ["tenant__name"]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.tenant}"

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGING_ROLES
