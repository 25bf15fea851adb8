"""The emulated Microsoft environment of each tenant: what Defender sees.

These rows stand in for Entra ID, Defender for Endpoint, Defender for
Identity, licensing and product settings. They are real, editable data; the
readiness assessment reads them. Every row carries ``updated_at`` so the
readiness refresh can tell what changed.
"""

from __future__ import annotations

from typing import Self, TypeVar

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.utils import timezone

from environment.search import bigrams, search_text_expression

_M = TypeVar("_M", bound=models.Model)


def directory_search_indexes(prefix: str) -> list[models.Index]:
    """The indexes the directory search (``contacts.selectors.directory_search``) is planned on.

    * ``<prefix>_search``: ``(tenant, search_text) INCLUDE (id)``, a b-tree in
      the column's "C" collation: exact names and prefixes are range scans
      that read the index only, in the order results are listed;
    * ``<prefix>_search_trgm``: pg_trgm's GIN index, for substrings of three
      letters or more (``LIKE '%ohnson%'``);
    * ``<prefix>_search_bigram``: the two-letter substrings (``'xq'``).
    """
    return [
        models.Index(fields=["tenant", "search_text"], include=["id"], name=f"{prefix}_search"),
        # A short pending list (64 kB, not 4 MB): every search reads it whole
        # until it is merged, while bulk writes still go in batches.
        GinIndex(
            OpClass(F("search_text"), name="gin_trgm_ops"), name=f"{prefix}_search_trgm", gin_pending_list_limit=64
        ),
        GinIndex(bigrams(F("search_text")), name=f"{prefix}_search_bigram", gin_pending_list_limit=64),
    ]


def search_text_field(*fields: str) -> models.GeneratedField:
    # Stored, folded by the database (environment/search.py); "C" collation: byte order, as the b-tree sorts.
    return models.GeneratedField(
        expression=search_text_expression(*fields),
        output_field=models.TextField(db_collation="C"),
        db_persist=True,
    )


class OnboardingState(models.TextChoices):
    ONBOARDED = "onboarded", "Onboarded"
    NOT_ONBOARDED = "not_onboarded", "Can be onboarded"


class AntivirusMode(models.TextChoices):
    ACTIVE = "active", "Active"
    PASSIVE = "passive", "Passive"
    DISABLED = "disabled", "Disabled"


# --- What "protected" means ---------------------------------------------------------------
# One definition each, asked by the Service status page, the provider's pages, the drill-down
# lists, the CSV and the readiness refresh. The device conditions name only fields that Device and
# DeviceTally share, so the same Q counts the tally (pages) and lists the devices (drill-downs).


PROTECTED_DEVICE = Q(onboarding_state=OnboardingState.ONBOARDED, av_mode=AntivirusMode.ACTIVE)


# Why a device isn't protected. Exactly one reason holds for every device that isn't, so the
# reasons add up to the unprotected devices by construction (any antivirus mode that is neither
# active nor passive counts as disabled).
DEVICE_GAPS: dict[str, tuple[str, Q]] = {
    "not_onboarded": ("not onboarded", ~Q(onboarding_state=OnboardingState.ONBOARDED)),
    "passive": (
        "antivirus in passive mode",
        Q(onboarding_state=OnboardingState.ONBOARDED, av_mode=AntivirusMode.PASSIVE),
    ),
    "disabled": (
        "antivirus disabled",
        Q(onboarding_state=OnboardingState.ONBOARDED) & ~Q(av_mode__in=[AntivirusMode.ACTIVE, AntivirusMode.PASSIVE]),
    ),
}


class DeviceStateQuerySet(models.QuerySet[_M]):
    """Shared by Device and DeviceTally: both carry ``onboarding_state`` and ``av_mode``."""

    def protected(self) -> Self:
        return self.filter(PROTECTED_DEVICE)

    def unprotected(self) -> Self:
        return self.exclude(PROTECTED_DEVICE)

    def gap(self, reason: str) -> Self:
        return self.filter(DEVICE_GAPS[reason][1])

    def with_protection(self) -> Self:
        """Each row with ``is_protected``, decided by the database with the same condition."""
        return self.annotate(is_protected=ExpressionWrapper(PROTECTED_DEVICE, output_field=BooleanField()))


class DeviceQuerySet(DeviceStateQuerySet["Device"]):
    pass


class DeviceTallyQuerySet(DeviceStateQuerySet["DeviceTally"]):
    pass


# An identity Defender for Identity can protect: an enabled account authenticated by an on-premises
# domain controller. It is protected when that controller has a sensor.
IDENTITY = Q(enabled=True, domain_controller__isnull=False)
PROTECTED_IDENTITY = Q(enabled=True, domain_controller__sensor_installed=True)
# Why an identity isn't protected (one reason today; each one holds for exactly its identities).
IDENTITY_GAPS: dict[str, tuple[str, Q]] = {
    "no_sensor": (
        "on a domain controller without a sensor",
        Q(enabled=True, domain_controller__sensor_installed=False),
    ),
}


class DirectoryUserQuerySet(models.QuerySet["DirectoryUser"]):
    def identities(self) -> Self:
        return self.filter(IDENTITY)

    def protected(self) -> Self:
        return self.filter(PROTECTED_IDENTITY)

    def unprotected(self) -> Self:
        return self.filter(IDENTITY).exclude(PROTECTED_IDENTITY)

    def gap(self, reason: str) -> Self:
        return self.filter(IDENTITY_GAPS[reason][1])


class DirectoryUser(models.Model):
    """An Entra ID user; with a domain controller, a hybrid identity synchronised from on-premises."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="directory_users")
    display_name = models.CharField(max_length=256)
    user_principal_name = models.CharField(max_length=256)
    mail = models.EmailField(blank=True)
    enabled = models.BooleanField(default=True)
    job_title = models.CharField(max_length=128, blank=True)
    # The on-premises domain controller that authenticates this account, for
    # hybrid identities; Defender for Identity protects the identity when
    # that controller has a sensor.
    domain_controller = models.ForeignKey(
        "DomainController", null=True, blank=True, on_delete=models.SET_NULL, related_name="identities"
    )
    # Tagged as a high-value asset (Defender for Identity's Sensitive tag, a priority account): the
    # tenant may exclude every such user from remediation (exclusions/).
    high_value = models.BooleanField(default=False, db_default=False)
    # "name mail upn", lower-cased and accent-free, for directory search.
    search_text = search_text_field("display_name", "mail", "user_principal_name")
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = DirectoryUserQuerySet.as_manager()

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user_principal_name"], name="directory_user_unique_upn")
        ]
        indexes = [
            models.Index(fields=["tenant", "enabled"], name="dir_user_tenant_enabled"),
            # The high-value users alone, so that counting the excluded ones never reads the directory.
            models.Index(fields=["tenant"], condition=Q(high_value=True), name="dir_user_high_value"),
            *directory_search_indexes("dir_user"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} <{self.user_principal_name}>"

    @property
    def on_premises(self) -> bool:
        return self.domain_controller_id is not None


class DirectoryGroup(models.Model):
    """An Entra ID group: a team that can be notified if it is mail-enabled."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="directory_groups")
    display_name = models.CharField(max_length=256)
    mail = models.EmailField(blank=True)
    mail_enabled = models.BooleanField(default=False)
    security_enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True)
    members = models.ManyToManyField(DirectoryUser, through="GroupMembership", related_name="groups")
    # "name mail", lower-cased and accent-free, for directory search.
    search_text = search_text_field("display_name", "mail")
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "display_name"], name="directory_group_unique_name")]
        indexes = directory_search_indexes("dir_group")

    def __str__(self) -> str:
        return self.display_name


class GroupMembership(models.Model):
    group = models.ForeignKey(DirectoryGroup, on_delete=models.CASCADE)
    user = models.ForeignKey(DirectoryUser, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="group_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.group_id}"


class DeviceGroup(models.Model):
    """A Defender for Endpoint device group."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="device_groups")
    name = models.CharField(max_length=128)
    description = models.CharField(max_length=500, blank=True)
    rank = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["rank", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="device_group_unique_name")]

    def __str__(self) -> str:
        return self.name


class OsPlatform(models.TextChoices):
    WINDOWS_11 = "windows11", "Windows 11"
    WINDOWS_10 = "windows10", "Windows 10"
    WINDOWS_SERVER_2022 = "windowsserver2022", "Windows Server 2022"
    WINDOWS_SERVER_2019 = "windowsserver2019", "Windows Server 2019"
    MACOS = "macos", "macOS"
    LINUX = "linux", "Linux"


class Device(models.Model):
    """A device as the Defender for Endpoint inventory sees it."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="devices")
    name = models.CharField(max_length=128)
    os_platform = models.CharField(max_length=32, choices=OsPlatform.choices)
    onboarding_state = models.CharField(
        max_length=16, choices=OnboardingState.choices, default=OnboardingState.NOT_ONBOARDED
    )
    av_mode = models.CharField(max_length=10, choices=AntivirusMode.choices, default=AntivirusMode.ACTIVE)
    device_group = models.ForeignKey(
        DeviceGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    last_seen = models.DateTimeField(null=True, blank=True)
    # Identified as a high-value device in Defender for Endpoint: the tenant may exclude every such
    # device from remediation (exclusions/).
    high_value = models.BooleanField(default=False, db_default=False)
    onboarded_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = DeviceQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="device_unique_name")]
        indexes = [
            # Readiness counts devices by state per tenant; this index answers
            # those aggregates from the index alone.
            models.Index(fields=["tenant", "onboarding_state", "av_mode"], name="device_tenant_state"),
            models.Index(fields=["tenant", "device_group"], name="device_tenant_group"),
            models.Index(fields=["tenant", "updated_at"], name="device_tenant_updated"),
        ]

    def __str__(self) -> str:
        return self.name


class DeviceTally(models.Model):
    """How many of a tenant's devices share one (device group, onboarding state, antivirus mode, high value).

    Pages show device counts from these few rows instead of counting the device table on every view.
    PostgreSQL triggers on ``environment_device`` (migrations 0005 and 0007) keep them right in the
    same transaction as every change to a device, whichever way it is made: the services' bulk UPDATEs,
    bulk inserts, the admin, a deleted device group (its devices become ungrouped) or a deleted
    tenant. A row whose count reaches 0 is deleted. Never written from Python.
    """

    # Not a constraint: when a tenant is deleted its devices go first and the triggers then delete
    # these rows; a constraint would be checked while the tally still has them.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    # The device group's id, 0 for devices outside any group (a key, not a foreign key, so that
    # the unique constraint below also holds for them).
    group_key = models.BigIntegerField()
    onboarding_state = models.CharField(max_length=16, choices=OnboardingState.choices)
    av_mode = models.CharField(max_length=10, choices=AntivirusMode.choices)
    # Keyed too, so that the devices excluded as high value are summed from these rows (migration 0007).
    high_value = models.BooleanField(default=False, db_default=False)
    devices = models.BigIntegerField()

    objects = DeviceTallyQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "group_key", "onboarding_state", "av_mode", "high_value"],
                name="device_tally_unique_cell",
            )
        ]

    def __str__(self) -> str:
        cell = f"{self.group_key}/{self.onboarding_state}/{self.av_mode}"
        return f"{self.devices} devices of tenant {self.tenant_id} in {cell}"


class DomainController(models.Model):
    """An on-premises Active Directory domain controller, watched by a Defender for Identity sensor if installed."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="domain_controllers")
    name = models.CharField(max_length=253)
    domain = models.CharField(max_length=253)
    sensor_installed = models.BooleanField(default=False)
    sensor_installed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="domain_controller_unique_name")]

    def __str__(self) -> str:
        return self.name


class LicenceProduct(models.TextChoices):
    DEFENDER_ENDPOINT_P2 = "mde_p2", "Microsoft Defender for Endpoint P2"
    DEFENDER_IDENTITY = "mdi", "Microsoft Defender for Identity"
    DEFENDER_OFFICE_P2 = "mdo_p2", "Microsoft Defender for Office 365 P2"
    ENTRA_ID_P1 = "entra_p1", "Microsoft Entra ID P1"
    ENTRA_ID_P2 = "entra_p2", "Microsoft Entra ID P2"


class Licence(models.Model):
    """Purchased seats of one product."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="licences")
    product = models.CharField(max_length=16, choices=LicenceProduct.choices)
    seats = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["product"]
        constraints = [models.UniqueConstraint(fields=["tenant", "product"], name="licence_unique_product")]

    def __str__(self) -> str:
        return f"{self.get_product_display()}: {self.seats}"


class SecuritySetting(models.Model):
    """The current value of one product setting, keyed generically.

    The keys and their allowed values are listed in
    ``environment.security_settings.SETTINGS``; readiness rules read them.
    """

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="security_settings")
    key = models.CharField(max_length=80)
    value = models.CharField(max_length=80)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="security_setting_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"
