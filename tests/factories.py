"""Plain factory functions for the test suite (no extra library needed)."""

from __future__ import annotations

import itertools
from typing import Any

from django.utils import timezone

from environment.models import (
    AntivirusMode,
    Device,
    DeviceGroup,
    DirectoryGroup,
    DirectoryUser,
    DomainController,
    GroupMembership,
    Licence,
    LicenceProduct,
    OnboardingState,
    OsPlatform,
    SecuritySetting,
)
from tenancy.models import Membership, ProviderOrganization, ProviderRole, ProviderStaff, Tenant, TenantRole, User

PASSWORD = "Correct-Horse-Battery-9"
# The cast signs in with a second factor: an authenticator app with this key.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
_seq = itertools.count(1)


def provider_org() -> ProviderOrganization:
    org, _ = ProviderOrganization.objects.get_or_create(
        domain="experts.example", defaults={"name": "Microsoft Defender Experts"}
    )
    return org


def tenant(name: str = "Contoso", domain: str | None = None, **extra: Any) -> Tenant:
    return Tenant.objects.create(
        name=name, primary_domain=domain or f"{name.lower()}{next(_seq)}.example", provider=provider_org(), **extra
    )


def user(email: str | None = None, *, display_name: str = "", password: str = PASSWORD) -> User:
    email = email or f"user{next(_seq)}@example.test"
    return User.objects.create_user(email=email, password=password, display_name=display_name or email.split("@")[0])


def enrol_totp(u: User, secret: str = TOTP_SECRET) -> User:
    """Give ``u`` an authenticator app (TOTP) with a known key."""
    from allauth.mfa.totp.internal.auth import TOTP

    TOTP.activate(u, secret)
    return u


def totp_code(secret: str = TOTP_SECRET, *, step: int = 0) -> str:
    """The authenticator app's code now (``step`` 30-second periods from now)."""
    import time

    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    return format_hotp_value(hotp_value(secret, int(time.time()) // 30 + step))


def member(
    t: Tenant, role: str = TenantRole.GLOBAL_ADMINISTRATOR, email: str | None = None, *, mfa: bool = True
) -> User:
    u = user(email)
    Membership.objects.create(user=u, tenant=t, role=role)
    return enrol_totp(u) if mfa else u


def staff(role: str = ProviderRole.SERVICE_DELIVERY_MANAGER, email: str | None = None, *, mfa: bool = True) -> User:
    u = user(email)
    ProviderStaff.objects.create(user=u, organization=provider_org(), role=role)
    return enrol_totp(u) if mfa else u


def directory_user(t: Tenant, name: str | None = None, **extra: Any) -> DirectoryUser:
    n = next(_seq)
    name = name or f"Person {n}"
    slug = name.lower().replace(" ", ".")
    defaults: dict[str, Any] = {
        "user_principal_name": f"{slug}{n}@{t.primary_domain}",
        "mail": f"{slug}{n}@{t.primary_domain}",
        "enabled": True,
    }
    defaults.update(extra)
    u = DirectoryUser(tenant=t, display_name=name, **defaults)
    u.save()
    return u


def directory_group(
    t: Tenant, name: str | None = None, members: list[DirectoryUser] | None = None, **extra: Any
) -> DirectoryGroup:
    name = name or f"Team {next(_seq)}"
    slug = name.lower().replace(" ", "-")
    defaults: dict[str, Any] = {"mail": f"{slug}@{t.primary_domain}", "mail_enabled": True, "security_enabled": False}
    defaults.update(extra)
    g = DirectoryGroup(tenant=t, display_name=name, **defaults)
    g.save()
    GroupMembership.objects.bulk_create([GroupMembership(group=g, user=m) for m in members or []])
    return g


def security_group(t: Tenant, name: str | None = None, members: list[DirectoryUser] | None = None) -> DirectoryGroup:
    """An Entra ID security group (not mail-enabled): what users are excluded from remediation through."""
    return directory_group(t, name, members, mail="", mail_enabled=False, security_enabled=True)


def device_group(t: Tenant, name: str | None = None) -> DeviceGroup:
    return DeviceGroup.objects.create(tenant=t, name=name or f"Group {next(_seq)}")


def devices(
    t: Tenant,
    count: int,
    *,
    group: DeviceGroup | None = None,
    onboarded: bool = True,
    av_mode: str = AntivirusMode.ACTIVE,
    prefix: str | None = None,
) -> list[Device]:
    prefix = prefix or f"dev{next(_seq)}"
    now = timezone.now()
    return Device.objects.bulk_create(
        [
            Device(
                tenant=t,
                name=f"{prefix}-{i:06d}",
                os_platform=OsPlatform.WINDOWS_11,
                onboarding_state=OnboardingState.ONBOARDED if onboarded else OnboardingState.NOT_ONBOARDED,
                av_mode=av_mode,
                device_group=group,
                last_seen=now,
                onboarded_at=now if onboarded else None,
            )
            for i in range(count)
        ],
        batch_size=5000,
    )


def domain_controller(t: Tenant, name: str | None = None, *, sensor: bool = False) -> DomainController:
    return DomainController.objects.create(
        tenant=t,
        name=name or f"dc{next(_seq)}.corp.{t.primary_domain}",
        domain=f"corp.{t.primary_domain}",
        sensor_installed=sensor,
        sensor_installed_at=timezone.now() if sensor else None,
    )


def licence(t: Tenant, product: str = LicenceProduct.DEFENDER_ENDPOINT_P2, seats: int = 100) -> Licence:
    obj, _ = Licence.objects.update_or_create(tenant=t, product=product, defaults={"seats": seats})
    return obj


def setting(t: Tenant, key: str, value: str) -> SecuritySetting:
    obj, _ = SecuritySetting.objects.update_or_create(tenant=t, key=key, defaults={"value": value})
    return obj
