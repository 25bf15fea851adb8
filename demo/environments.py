"""A realistic readiness environment for one tenant, for tests, benchmarks and demos.

Bulk inserts only, so 100,000 devices take seconds. This writes environment
rows directly (it *is* the emulated environment being created), never through
readiness.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from environment.models import (
    AntivirusMode,
    Device,
    DirectoryUser,
    DomainController,
    Licence,
    LicenceProduct,
    OnboardingState,
    OsPlatform,
    SecuritySetting,
)
from tenancy.models import Tenant

# A share of devices in each state, like a tenant half-way through onboarding.
DEFAULT_SPLIT = {"active": 0.80, "passive": 0.10, "disabled": 0.03, "not_onboarded": 0.07}

GOOD_SETTINGS = {
    "mde.tamper_protection": "on",
    "mde.cloud_protection": "on",
    "mde.edr_block_mode": "on",
    "mde.network_protection": "block",
    "mde.air_level": "full",
    "mde.asr_rules": "block",
    "mde.pua_protection": "block",
    "mdi.audit_policy": "configured",
    "mdo.safe_links": "on",
    "mdo.safe_attachments": "on",
    "mdo.preset_policies": "standard",
    "mdca.m365_connector": "connected",
    "purview.unified_audit_log": "on",
}

HALF_WAY_SETTINGS = {
    "mde.tamper_protection": "on",
    "mde.cloud_protection": "on",
    "mde.network_protection": "audit",
    "mde.air_level": "semi",
    "mde.asr_rules": "audit",
    "mdi.audit_policy": "configured",
    "mdo.safe_links": "on",
    "purview.unified_audit_log": "off",
}


@dataclass(frozen=True)
class DemoCounts:
    active: int
    passive: int
    disabled: int
    not_onboarded: int
    domain_controllers: int
    domain_controllers_with_sensor: int
    identities: int


def seed_environment(
    tenant: Tenant,
    *,
    devices: int = 1500,
    split: dict[str, float] | None = None,
    domain_controllers: int = 4,
    sensors: int = 3,
    identities_per_dc: int = 25,
    settings: dict[str, str] | None = None,
    device_seats: int | None = None,
    identity_seats: int | None = None,
    entra_seats: int | None = None,
    prefix: str = "ws",
) -> DemoCounts:
    split = split or DEFAULT_SPLIT
    counts = {name: int(devices * share) for name, share in split.items()}
    counts["active"] += devices - sum(counts.values())
    now = timezone.now()
    rows: list[Device] = []
    n = 0
    platforms = [OsPlatform.WINDOWS_11, OsPlatform.WINDOWS_10, OsPlatform.WINDOWS_SERVER_2022, OsPlatform.MACOS]
    for state, count in counts.items():
        onboarded = state != "not_onboarded"
        av = AntivirusMode.ACTIVE if state in ("active", "not_onboarded") else AntivirusMode(state)
        for _ in range(count):
            n += 1
            rows.append(
                Device(
                    tenant=tenant,
                    name=f"{prefix}-{n:06d}",
                    os_platform=platforms[n % len(platforms)],
                    onboarding_state=OnboardingState.ONBOARDED if onboarded else OnboardingState.NOT_ONBOARDED,
                    av_mode=av,
                    last_seen=now,
                    onboarded_at=now if onboarded else None,
                    updated_at=now,
                )
            )
    Device.objects.bulk_create(rows, batch_size=5000)
    dcs = DomainController.objects.bulk_create(
        [
            DomainController(
                tenant=tenant,
                name=f"dc{i + 1:02d}.corp.{tenant.primary_domain}",
                domain=f"corp.{tenant.primary_domain}",
                sensor_installed=i < sensors,
                sensor_installed_at=now if i < sensors else None,
                updated_at=now,
            )
            for i in range(domain_controllers)
        ]
    )
    users = []
    for d, dc in enumerate(dcs):
        for i in range(identities_per_dc):
            name = f"User {d + 1}-{i + 1}"
            upn = f"user{d + 1}.{i + 1}@{tenant.primary_domain}"
            users.append(
                DirectoryUser(
                    tenant=tenant,
                    display_name=name,
                    user_principal_name=upn,
                    mail=upn,
                    domain_controller=dc,
                    updated_at=now,
                )
            )
    DirectoryUser.objects.bulk_create(users, batch_size=5000)
    identities = len(users)
    seats = {
        LicenceProduct.DEFENDER_ENDPOINT_P2: device_seats if device_seats is not None else devices,
        LicenceProduct.DEFENDER_IDENTITY: identity_seats if identity_seats is not None else identities,
        LicenceProduct.ENTRA_ID_P1: entra_seats if entra_seats is not None else identities,
    }
    Licence.objects.bulk_create([Licence(tenant=tenant, product=p, seats=s) for p, s in seats.items()])
    SecuritySetting.objects.bulk_create(
        [SecuritySetting(tenant=tenant, key=k, value=v) for k, v in (settings or HALF_WAY_SETTINGS).items()]
    )
    return DemoCounts(
        active=counts["active"],
        passive=counts.get("passive", 0),
        disabled=counts.get("disabled", 0),
        not_onboarded=counts.get("not_onboarded", 0),
        domain_controllers=domain_controllers,
        domain_controllers_with_sensor=min(sensors, domain_controllers),
        identities=identities,
    )
