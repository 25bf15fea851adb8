"""Deterministic demo data: the provider, Contoso, Fabrikam and their environments.

``seed_demo(seed=..., devices=..., reset=...)`` is idempotent and
deterministic:

* everything is generated from ``random.Random`` instances seeded with
  ``seed`` (one per data set, so the device count never shifts user names);
* rows are inserted with ``bulk_create(ignore_conflicts=True)`` keyed by their
  natural unique keys (UPN, group name, device name...), so a second run adds
  nothing and leaves changes made through the portal alone;
* Contoso's devices are rebuilt only when their number differs from
  ``devices`` (``--devices N`` rescales them); ``reset`` wipes both demo
  tenants' environments first and restores the demo users' passwords/roles.

100,000 devices load in about two seconds: device rows are streamed with
COPY; see bench/environment_seed.py.
"""

from __future__ import annotations

import math
import random
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_record
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
from onboarding.services import invitation_send
from tenancy.models import (
    Membership,
    ProviderOrganization,
    ProviderRole,
    ProviderStaff,
    ServicePhase,
    Tenant,
    TenantRole,
    User,
)

PROVIDER_NAME = "Microsoft Defender Experts"
PROVIDER_DOMAIN = "experts.example"
SDM_EMAIL = "sdm@experts.example"
SDM_NAME = "Sam Delgado"
CONTOSO_DOMAIN = "contoso.example"
FABRIKAM_DOMAIN = "fabrikam.example"
DEFAULT_DEVICES = 1500
BATCH_SIZE = 10_000

# (email, display name, role) of the portal's demo users.
CONTOSO_PEOPLE = (
    ("admin@contoso.example", "Adele Vance", TenantRole.GLOBAL_ADMINISTRATOR, "IT Director"),
    ("secadmin@contoso.example", "Isaiah Langer", TenantRole.SECURITY_ADMINISTRATOR, "Security Engineering Lead"),
    ("operator@contoso.example", "Lee Gu", TenantRole.SECURITY_OPERATOR, "SOC Analyst"),
    ("reader@contoso.example", "Megan Bowen", TenantRole.SECURITY_READER, "Risk Analyst"),
)
FABRIKAM_PEOPLE = (("admin@fabrikam.example", "Diego Siciliani", TenantRole.GLOBAL_ADMINISTRATOR, "Head of IT"),)

# fmt: off
FIRST_NAMES = (
    "Aaliyah", "Aarav", "Adrián", "Agnès", "Aiko", "Alejandro", "Amélie", "Ana María", "Anders", "Andrés", "Anja",
    "Arjun", "Aylin", "Beatriz", "Benedikt", "Björn", "Bruno", "Camille", "Carlos", "Chen", "Chiara", "Chloé",
    "Dáithí", "Daniel", "Dmitri", "Elena", "Élodie", "Emeka", "Emily", "Eva", "Fatima", "Felipe", "Fiona",
    "François", "Grace", "Greta", "Hana", "Hannah", "Hiroshi", "Ingrid", "Isabel", "Jakub", "James", "Javier",
    "Jens", "Jiří", "João", "Jonas", "José", "Julia", "Kai", "Karin", "Katarzyna", "Kenji", "Laura", "Léa",
    "Liam", "Lucía", "Łukasz", "Maëlle", "Malik", "María", "Mateo", "Mei", "Mikael", "Miriam", "Nadia", "Niamh",
    "Nikolai", "Noémie", "Olivia", "Omar", "Óscar", "Pablo", "Paul", "Priya", "Rafael", "Raúl", "Renée", "Rohan",
    "Rúben", "Saanvi", "Samuel", "Sarah", "Sebastián", "Siobhán", "Sofía", "Søren", "Stéphane", "Tomás", "Valentina",
    "Wei", "William", "Yasmin", "Yusuf", "Zoë", "Zuzana",
)
LAST_NAMES = (
    "Abbott", "Adeyemi", "Ahmed", "Alvarez", "Andersson", "Bauer", "Becker", "Bergström", "Bianchi", "Brennan",
    "Brown", "Castro", "Chen", "Costa", "Dąbrowski", "Dubois", "Dvořák", "Eriksen", "Fernández", "Fischer",
    "Fitzgerald", "García", "Gómez", "Gonçalves", "Haddad", "Hansen", "Hernández", "Horváth", "Ibrahim", "Ivanova",
    "Jansen", "Jiménez", "Johansson", "Kaur", "Kelly", "Kim", "Kowalski", "Kumar", "Larsen", "Laurent", "Lefèvre",
    "Li", "López", "Martin", "Martínez", "Mendes", "Müller", "Murphy", "Nakamura", "Nguyen", "Novák", "Núñez",
    "O'Brien", "Ólafsdóttir", "Okafor", "Patel", "Pereira", "Petrović", "Quinn", "Ramírez", "Rossi", "Sánchez",
    "Santos", "Schmidt", "Schäfer", "Singh", "Smith", "Sørensen", "Suzuki", "Svensson", "Tanaka", "Thompson",
    "Torres", "Türk", "Van der Berg", "Wagner", "Walsh", "Wang", "Weiß", "Williams", "Wójcik", "Yamamoto", "Yılmaz",
    "Zhang", "Zieliński",
)
# fmt: on
JOB_TITLES = (
    "Account Executive",
    "Business Analyst",
    "Cloud Engineer",
    "Customer Success Manager",
    "Data Scientist",
    "DevOps Engineer",
    "Facilities Coordinator",
    "Financial Analyst",
    "HR Business Partner",
    "Helpdesk Technician",
    "Legal Counsel",
    "Marketing Specialist",
    "Network Engineer",
    "Office Manager",
    "Payroll Specialist",
    "Product Manager",
    "Project Manager",
    "Sales Manager",
    "Security Analyst",
    "Software Engineer",
    "Solutions Architect",
    "Systems Administrator",
    "Technical Writer",
    "UX Designer",
)
# fmt: on


@dataclass(frozen=True)
class DcSpec:
    host: str
    site: str
    sensor: bool
    weight: float  # share of hybrid identities it authenticates


@dataclass(frozen=True)
class GroupSpec:
    name: str
    mail_local: str  # "" for groups that aren't mail-enabled
    security: bool
    description: str
    members: tuple[int, int]  # min, max random members
    anchors: tuple[str, ...] = ()  # demo people always in the group


@dataclass(frozen=True)
class DeviceGroupSpec:
    name: str
    description: str
    share: float
    onboarded: float
    passive: float
    disabled: float
    platforms: tuple[tuple[str, str, float], ...]  # (platform, name prefix, weight)


@dataclass(frozen=True)
class TenantSpec:
    name: str
    domain: str
    short: str
    phase: str
    people: tuple[tuple[str, str, str, str], ...]
    users: int
    hybrid_share: float
    disabled_share: float
    dcs: tuple[DcSpec, ...]
    groups: tuple[GroupSpec, ...]
    device_groups: tuple[DeviceGroupSpec, ...]
    licences: Callable[[int, int], dict[str, int]]  # (devices, users) -> seats
    settings: dict[str, str]


W11, W10, S22, S19, MAC, LNX = (
    OsPlatform.WINDOWS_11.value,
    OsPlatform.WINDOWS_10.value,
    OsPlatform.WINDOWS_SERVER_2022.value,
    OsPlatform.WINDOWS_SERVER_2019.value,
    OsPlatform.MACOS.value,
    OsPlatform.LINUX.value,
)

# fmt: off
CONTOSO_GROUPS = (
    GroupSpec("SOC Team", "soc", False, "Security operations centre: 24x7 monitoring and triage", (8, 12),
              ("admin@contoso.example", "secadmin@contoso.example", "operator@contoso.example")),
    GroupSpec("IT Security Operations", "itsecops", True, "Security engineering and operations", (10, 16),
              ("secadmin@contoso.example", "operator@contoso.example")),
    GroupSpec("Security Incident Response", "sirt", False, "On-call incident responders", (5, 8),
              ("secadmin@contoso.example",)),
    GroupSpec("CISO Office", "ciso-office", False, "Chief Information Security Officer and staff", (3, 5),
              ("admin@contoso.example",)),
    GroupSpec("Risk and Compliance", "risk", False, "Governance, risk and compliance", (5, 9),
              ("reader@contoso.example",)),
    GroupSpec("Service Desk", "servicedesk", False, "First-line IT support", (10, 20)),
    GroupSpec("Infrastructure Team", "infrastructure", True, "Servers, storage and virtualisation", (8, 14)),
    GroupSpec("Network Operations", "netops", False, "Network and firewall operations", (5, 10)),
    GroupSpec("Cloud Platform Team", "cloud-platform", True, "Azure landing zone and platform engineering", (6, 12)),
    GroupSpec("Identity and Access Management", "iam", True, "Directory, SSO and privileged access", (4, 8)),
    GroupSpec("Executive Leadership", "leadership", False, "Executive leadership team", (6, 9)),
    GroupSpec("Finance Team", "finance", False, "Finance and accounting", (12, 25)),
    GroupSpec("Human Resources", "hr", False, "People team", (8, 14)),
    GroupSpec("Legal", "legal", False, "Legal and contracts", (4, 7)),
    GroupSpec("Marketing", "marketing", False, "Brand and communications", (10, 18)),
    GroupSpec("Sales EMEA", "sales-emea", False, "Sales, Europe, Middle East and Africa", (15, 30)),
    GroupSpec("Sales Americas", "sales-americas", False, "Sales, North and South America", (15, 30)),
    GroupSpec("Engineering", "engineering", False, "Product engineering", (30, 60)),
    GroupSpec("All Staff", "allstaff", False, "Everyone at Contoso", (250, 300)),
    GroupSpec("SG-Defender-Administrators", "", True, "Microsoft Defender XDR administrators", (3, 5),
              ("admin@contoso.example", "secadmin@contoso.example")),
    GroupSpec("SG-Defender-Readers", "", True, "Read-only access to Microsoft Defender XDR", (5, 10),
              ("reader@contoso.example",)),
    GroupSpec("SG-Tier0-Admins", "", True, "Domain and enterprise administrators", (2, 4)),
    GroupSpec("SG-Server-Admins", "", True, "Local administrators on member servers", (6, 10)),
    GroupSpec("SG-Workstation-Admins", "", True, "Local administrators on workstations", (8, 12)),
    GroupSpec("SG-VPN-Users", "", True, "Remote access VPN", (80, 150)),
    GroupSpec("SG-MFA-Exclusions", "", True, "Temporarily excluded from MFA (review monthly)", (2, 5)),
    GroupSpec("SG-Intune-Pilot", "", True, "Pilot ring for device configuration", (15, 25)),
    GroupSpec("SG-Privileged-Access-Workstations", "", True, "Users of privileged access workstations", (3, 6)),
    GroupSpec("SG-Break-Glass-Accounts", "", True, "Emergency access accounts", (0, 0)),
)
# fmt: on

# fmt: off
CONTOSO_DEVICE_GROUPS = (
    DeviceGroupSpec("Datacenter servers", "Production servers in the Amsterdam and Dublin datacenters",
                    0.08, 0.90, 0.25, 0.02, ((S22, "CTS-SRV", 0.6), (S19, "CTS-SRV", 0.4))),
    DeviceGroupSpec("Branch office servers", "File and print servers in branch offices",
                    0.04, 0.55, 0.20, 0.05, ((S19, "CTS-BR-SRV", 0.8), (LNX, "cts-br-lnx", 0.2))),
    DeviceGroupSpec("Corporate laptops", "Standard-issue laptops",
                    0.45, 0.92, 0.03, 0.01, ((W11, "CTS-LT", 0.8), (W10, "CTS-LT", 0.2))),
    DeviceGroupSpec("Engineering workstations", "Developer and build workstations",
                    0.20, 0.80, 0.08, 0.02,
                    ((W11, "CTS-ENG", 0.55), (W10, "CTS-ENG", 0.3), (LNX, "cts-eng-lnx", 0.15))),
    DeviceGroupSpec("Finance and HR", "Devices handling financial and personal data",
                    0.13, 0.95, 0.10, 0.01, ((W11, "CTS-FIN", 0.7), (W10, "CTS-FIN", 0.3))),
    DeviceGroupSpec("macOS devices", "Design and executive MacBooks",
                    0.10, 0.70, 0.05, 0.00, ((MAC, "CTS-MBP", 1.0),)),
)
# fmt: on


def _contoso_licences(devices: int, users: int) -> dict[str, int]:
    # Seats leave a visible gap: more Defender for Endpoint seats than
    # protected devices, more Defender for Identity seats than protected
    # identities, and fewer Entra ID P1 seats than enabled users.
    return {
        LicenceProduct.DEFENDER_ENDPOINT_P2: int(math.ceil(devices * 1.05 / 50) * 50),
        LicenceProduct.DEFENDER_IDENTITY: int(math.ceil(users * 0.95 / 10) * 10),
        LicenceProduct.DEFENDER_OFFICE_P2: int(math.floor(users * 0.95 / 10) * 10),
        LicenceProduct.ENTRA_ID_P1: int(math.floor(users * 0.75 / 10) * 10),
        LicenceProduct.ENTRA_ID_P2: 50,
    }


CONTOSO = TenantSpec(
    name="Contoso",
    domain=CONTOSO_DOMAIN,
    short="CTS",
    phase=ServicePhase.INVITED,
    people=CONTOSO_PEOPLE,
    users=320,
    hybrid_share=0.85,
    disabled_share=0.06,
    dcs=(
        DcSpec("CTS-DC01", "Amsterdam", True, 0.40),
        DcSpec("CTS-DC02", "Amsterdam", True, 0.25),
        DcSpec("CTS-DC03", "Dublin", False, 0.20),
        DcSpec("CTS-DC04", "Manufacturing plant", False, 0.15),
    ),
    groups=CONTOSO_GROUPS,
    device_groups=CONTOSO_DEVICE_GROUPS,
    licences=_contoso_licences,
    settings={
        "mde.tamper_protection": "on",
        "mde.cloud_protection": "on",
        "mde.edr_block_mode": "off",
        "mde.network_protection": "audit",
        "mde.air_level": "semi",
        "mde.asr_rules": "audit",
        "mde.pua_protection": "off",
        "mdi.audit_policy": "partial",
        "mdo.safe_links": "on",
        "mdo.safe_attachments": "off",
        "mdo.preset_policies": "standard",
        "mdca.m365_connector": "connected",
        "purview.unified_audit_log": "on",
    },
)

FABRIKAM = TenantSpec(
    name="Fabrikam",
    domain=FABRIKAM_DOMAIN,
    short="FAB",
    phase=ServicePhase.NOT_INVITED,
    people=FABRIKAM_PEOPLE,
    users=20,
    hybrid_share=0.8,
    disabled_share=0.05,
    dcs=(DcSpec("FAB-DC01", "Lyon", False, 1.0),),
    groups=(
        GroupSpec("Security Team", "security", False, "Fabrikam security team", (3, 5), ("admin@fabrikam.example",)),
        GroupSpec("IT Operations", "itops", True, "IT operations", (4, 6)),
        GroupSpec("SG-Admins", "", True, "Administrators", (2, 3), ("admin@fabrikam.example",)),
    ),
    device_groups=(
        DeviceGroupSpec("Servers", "Fabrikam servers", 0.25, 0.6, 0.3, 0.0, ((S22, "FAB-SRV", 1.0),)),
        DeviceGroupSpec(
            "Workstations", "Fabrikam workstations", 0.75, 0.8, 0.05, 0.05, ((W11, "FAB-WS", 0.7), (W10, "FAB-WS", 0.3))
        ),
    ),
    licences=lambda devices, users: {
        LicenceProduct.DEFENDER_ENDPOINT_P2: 50,
        LicenceProduct.DEFENDER_IDENTITY: 25,
        LicenceProduct.DEFENDER_OFFICE_P2: 20,
        LicenceProduct.ENTRA_ID_P1: 25,
        LicenceProduct.ENTRA_ID_P2: 0,
    },
    settings={"mde.tamper_protection": "off", "mde.cloud_protection": "on", "mdo.safe_links": "on"},
)
FABRIKAM_DEVICES = 40


@dataclass
class SeedSummary:
    seed: int
    devices: int
    created: dict[str, dict[str, int]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"Demo data (seed {self.seed}):"]
        for tenant, counts in self.counts.items():
            made = self.created.get(tenant, {})
            parts = []
            for key, value in counts.items():
                added = made.get(key, 0)
                parts.append(f"{value:,} {key}" + (f" (+{added:,})" if added else ""))
            out.append(f"  {tenant}: " + ", ".join(parts))
        out.append("  Sign in as admin@contoso.example, secadmin@, operator@, reader@contoso.example,")
        out.append("  admin@fabrikam.example or sdm@experts.example with the DEMO_PASSWORD.")
        out.append("  Timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items()))
        return out


# --- Generation (pure: the same seed always gives the same rows) ----------------------------


def _ascii_slug(text: str) -> str:
    # "Zoë Ångström" -> "zoeangstrom", for generated addresses.
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


@dataclass(frozen=True)
class UserRow:
    display_name: str
    upn: str
    job_title: str
    enabled: bool
    dc_host: str | None


def generate_users(spec: TenantSpec, seed: int) -> list[UserRow]:
    rng = random.Random(f"{seed}:{spec.domain}:users")
    rows: list[UserRow] = []
    used: set[str] = set()
    dc_hosts = [dc.host for dc in spec.dcs]
    dc_weights = [dc.weight for dc in spec.dcs]
    for email, name, _role, title in spec.people:
        used.add(email)
        rows.append(UserRow(name, email, title, True, dc_hosts[0] if dc_hosts else None))
    pairs = rng.sample(range(len(FIRST_NAMES) * len(LAST_NAMES)), spec.users)
    for index in pairs:
        first = FIRST_NAMES[index // len(LAST_NAMES)]
        last = LAST_NAMES[index % len(LAST_NAMES)]
        local = f"{_ascii_slug(first)}.{_ascii_slug(last)}"
        upn = f"{local}@{spec.domain}"
        n = 2
        while upn in used:
            upn = f"{local}{n}@{spec.domain}"
            n += 1
        used.add(upn)
        hybrid = rng.random() < spec.hybrid_share
        dc_host = rng.choices(dc_hosts, weights=dc_weights)[0] if hybrid and dc_hosts else None
        rows.append(
            UserRow(
                display_name=f"{first} {last}",
                upn=upn,
                job_title=rng.choice(JOB_TITLES),
                enabled=rng.random() >= spec.disabled_share,
                dc_host=dc_host,
            )
        )
    return rows


def generate_memberships(spec: TenantSpec, seed: int, users: list[UserRow]) -> dict[str, list[str]]:
    rng = random.Random(f"{seed}:{spec.domain}:groups")
    pool = [u.upn for u in users if u.upn not in {p[0] for p in spec.people}]
    result: dict[str, list[str]] = {}
    for group in spec.groups:
        lo, hi = group.members
        size = min(len(pool), rng.randint(lo, hi))
        chosen = rng.sample(pool, size)
        result[group.name] = sorted(set(chosen) | set(group.anchors))
    return result


@dataclass(frozen=True)
class DeviceRow:
    name: str
    platform: str
    group: str
    onboarded: bool
    av_mode: str
    seen_minutes_ago: int
    onboarded_days_ago: int


def generate_devices(spec: TenantSpec, seed: int, total: int) -> list[DeviceRow]:
    """``total`` devices split over the device groups by share, with realistic names.

    Names are ``<prefix>-<sequence>`` per prefix, so they are unique without
    any lookups; the sequence width grows with the fleet.
    """
    rng = random.Random(f"{seed}:{spec.domain}:devices:{total}")
    width = max(4, len(str(total)))
    sizes = [int(total * g.share) for g in spec.device_groups]
    biggest = max(range(len(sizes)), key=lambda i: spec.device_groups[i].share)
    sizes[biggest] += total - sum(sizes)  # the biggest group absorbs rounding
    sequences: dict[str, int] = {}
    rows: list[DeviceRow] = []
    active, passive, disabled = AntivirusMode.ACTIVE.value, AntivirusMode.PASSIVE.value, AntivirusMode.DISABLED.value
    for group, size in zip(spec.device_groups, sizes, strict=True):
        platforms = [p[0] for p in group.platforms]
        prefixes = {p[0]: p[1] for p in group.platforms}
        weights = [p[2] for p in group.platforms]
        picks = rng.choices(platforms, weights=weights, k=size)
        for platform in picks:
            prefix = prefixes[platform]
            seq = sequences.get(prefix, 0) + 1
            sequences[prefix] = seq
            roll = rng.random()
            av = disabled if roll < group.disabled else passive if roll < group.disabled + group.passive else active
            rows.append(
                DeviceRow(
                    name=f"{prefix}-{seq:0{width}d}",
                    platform=platform,
                    group=group.name,
                    onboarded=rng.random() < group.onboarded,
                    av_mode=av,
                    seen_minutes_ago=rng.randint(1, 60 * 24 * 14),
                    onboarded_days_ago=rng.randint(1, 400),
                )
            )
    return rows


# --- Applying it to the database -------------------------------------------------------------


def _ensure_user(email: str, name: str, password: str, *, reset: bool) -> tuple[User, bool]:
    user = User.objects.filter(email=email).first()
    if user is None:
        return User.objects.create_user(email=email, password=password, display_name=name), True
    changed = False
    if reset or not user.check_password(password):
        user.set_password(password)
        changed = True
    if not user.is_active or user.display_name != name:
        user.is_active = True
        user.display_name = name
        changed = True
    if changed:
        user.save()
    return user, False


def _ensure_totp(user: User, secret: str) -> None:
    """Demo users sign in with a second factor too, from a known key (see DEMO_TOTP_SECRET)."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP

    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, secret)
        RecoveryCodes.activate(user)


def _reset_environment(tenant: Tenant) -> None:
    # Groups and devices first; users' memberships cascade with them.
    Device.objects.filter(tenant=tenant).delete()
    DeviceGroup.objects.filter(tenant=tenant).delete()
    DirectoryGroup.objects.filter(tenant=tenant).delete()
    DirectoryUser.objects.filter(tenant=tenant).delete()
    DomainController.objects.filter(tenant=tenant).delete()
    Licence.objects.filter(tenant=tenant).delete()
    SecuritySetting.objects.filter(tenant=tenant).delete()


def _seed_tenant_environment(
    spec: TenantSpec, tenant: Tenant, *, seed: int, devices: int, now: datetime, timings: dict[str, float]
) -> dict[str, int]:
    created: dict[str, int] = {}
    started = time.perf_counter()

    # Domain controllers.
    before = DomainController.objects.filter(tenant=tenant).count()
    DomainController.objects.bulk_create(
        [
            DomainController(
                tenant=tenant,
                name=f"{dc.host}.corp.{spec.domain}",
                domain=f"corp.{spec.domain}",
                sensor_installed=dc.sensor,
                sensor_installed_at=now - timedelta(days=30) if dc.sensor else None,
                updated_at=now,
            )
            for dc in spec.dcs
        ],
        ignore_conflicts=True,
    )
    dc_ids = {
        name.split(".", 1)[0]: pk
        for name, pk in DomainController.objects.filter(tenant=tenant).values_list("name", "id")
    }
    created["domain controllers"] = len(dc_ids) - before

    # Directory users.
    users = generate_users(spec, seed)
    before = DirectoryUser.objects.filter(tenant=tenant).count()
    DirectoryUser.objects.bulk_create(
        [
            DirectoryUser(
                tenant=tenant,
                display_name=u.display_name,
                user_principal_name=u.upn,
                mail=u.upn,
                enabled=u.enabled,
                job_title=u.job_title,
                domain_controller_id=dc_ids.get(u.dc_host) if u.dc_host else None,
                updated_at=now,
            )
            for u in users
        ],
        batch_size=BATCH_SIZE,
        ignore_conflicts=True,
    )
    user_ids = dict(DirectoryUser.objects.filter(tenant=tenant).values_list("user_principal_name", "id"))
    created["users"] = len(user_ids) - before

    # Groups and their members.
    before = DirectoryGroup.objects.filter(tenant=tenant).count()
    DirectoryGroup.objects.bulk_create(
        [
            DirectoryGroup(
                tenant=tenant,
                display_name=g.name,
                mail=f"{g.mail_local}@{spec.domain}" if g.mail_local else "",
                mail_enabled=bool(g.mail_local),
                security_enabled=g.security,
                description=g.description,
                updated_at=now,
            )
            for g in spec.groups
        ],
        ignore_conflicts=True,
    )
    group_ids = dict(DirectoryGroup.objects.filter(tenant=tenant).values_list("display_name", "id"))
    created["groups"] = len(group_ids) - before
    memberships = generate_memberships(spec, seed, users)
    GroupMembership.objects.bulk_create(
        [
            GroupMembership(group_id=group_ids[name], user_id=user_ids[upn])
            for name, upns in memberships.items()
            if name in group_ids
            for upn in upns
            if upn in user_ids
        ],
        batch_size=BATCH_SIZE,
        ignore_conflicts=True,
    )
    timings[f"{spec.name} directory"] = time.perf_counter() - started

    # Device groups and devices.
    started = time.perf_counter()
    DeviceGroup.objects.bulk_create(
        [
            DeviceGroup(tenant=tenant, name=g.name, description=g.description, rank=rank, updated_at=now)
            for rank, g in enumerate(spec.device_groups, start=1)
        ],
        ignore_conflicts=True,
    )
    device_group_ids = dict(DeviceGroup.objects.filter(tenant=tenant).values_list("name", "id"))
    existing = Device.objects.filter(tenant=tenant).count()
    rebuilt = existing != devices
    if rebuilt:
        # Rescale: the device set for N devices is a function of (seed, N) only.
        if existing:
            Device.objects.filter(tenant=tenant).delete()
        rows = generate_devices(spec, seed, devices)
        _insert_devices(tenant, rows, device_group_ids, now)
    created["devices"] = devices if rebuilt else 0
    timings[f"{spec.name} devices"] = time.perf_counter() - started

    # Licences (seats follow the fleet when it is rescaled) and settings.
    seats = spec.licences(devices, len(users))
    before = Licence.objects.filter(tenant=tenant).count()
    Licence.objects.bulk_create(
        [Licence(tenant=tenant, product=p, seats=n, updated_at=now) for p, n in seats.items()],
        ignore_conflicts=True,
    )
    if rebuilt and existing:
        Licence.objects.filter(tenant=tenant, product=LicenceProduct.DEFENDER_ENDPOINT_P2).update(
            seats=seats[LicenceProduct.DEFENDER_ENDPOINT_P2], updated_at=now
        )
    created["licences"] = Licence.objects.filter(tenant=tenant).count() - before
    before = SecuritySetting.objects.filter(tenant=tenant).count()
    SecuritySetting.objects.bulk_create(
        [SecuritySetting(tenant=tenant, key=k, value=v, updated_at=now) for k, v in spec.settings.items()],
        ignore_conflicts=True,
    )
    created["settings"] = SecuritySetting.objects.filter(tenant=tenant).count() - before
    return created


def _device_values(
    tenant: Tenant, rows: list[DeviceRow], group_ids: dict[str, int], now: datetime
) -> Iterator[tuple[Any, ...]]:
    onboarded, not_onboarded = OnboardingState.ONBOARDED.value, OnboardingState.NOT_ONBOARDED.value
    for r in rows:
        yield (
            tenant.pk,
            r.name,
            r.platform,
            onboarded if r.onboarded else not_onboarded,
            r.av_mode,
            group_ids.get(r.group),
            now - timedelta(minutes=r.seen_minutes_ago),
            now - timedelta(days=r.onboarded_days_ago) if r.onboarded else None,
            now,
        )


DEVICE_COLUMNS = (
    "tenant_id", "name", "os_platform", "onboarding_state", "av_mode",
    "device_group_id", "last_seen", "onboarded_at", "updated_at",
)  # fmt: skip


def _insert_devices(tenant: Tenant, rows: list[DeviceRow], group_ids: dict[str, int], now: datetime) -> None:
    """Insert the generated devices in bulk.

    Streamed with COPY: no model instances (building 100,000 of those costs
    more than inserting them).
    """
    values = _device_values(tenant, rows, group_ids, now)
    table = connection.ops.quote_name(Device._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in DEVICE_COLUMNS)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in values:
            copy.write_row(row)


def _counts(tenant: Tenant) -> dict[str, int]:
    return {
        "users": DirectoryUser.objects.filter(tenant=tenant).count(),
        "groups": DirectoryGroup.objects.filter(tenant=tenant).count(),
        "devices": Device.objects.filter(tenant=tenant).count(),
        "device groups": DeviceGroup.objects.filter(tenant=tenant).count(),
        "domain controllers": DomainController.objects.filter(tenant=tenant).count(),
        "licences": Licence.objects.filter(tenant=tenant).count(),
        "settings": SecuritySetting.objects.filter(tenant=tenant).count(),
    }


def seed_demo(*, seed: int = 42, devices: int = DEFAULT_DEVICES, reset: bool = False) -> SeedSummary:
    """Create (or complete) the demo data; see the module docstring."""
    if devices < 0:
        raise ValueError("The number of devices can't be negative.")
    summary = SeedSummary(seed=seed, devices=devices)
    total_started = time.perf_counter()
    password: str = settings.DEMO_PASSWORD
    now = timezone.now()
    with transaction.atomic():
        started = time.perf_counter()
        provider, _ = ProviderOrganization.objects.get_or_create(
            domain=PROVIDER_DOMAIN, defaults={"name": PROVIDER_NAME}
        )
        sdm, _ = _ensure_user(SDM_EMAIL, SDM_NAME, password, reset=reset)
        _ensure_totp(sdm, settings.DEMO_TOTP_SECRET)
        ProviderStaff.objects.update_or_create(
            user=sdm, defaults={"organization": provider, "role": ProviderRole.SERVICE_DELIVERY_MANAGER}
        )
        tenants: list[tuple[TenantSpec, Tenant, int]] = []
        for spec, n_devices in ((CONTOSO, devices), (FABRIKAM, FABRIKAM_DEVICES)):
            tenant, _ = Tenant.objects.get_or_create(
                primary_domain=spec.domain,
                defaults={"name": spec.name, "provider": provider, "service_phase": ServicePhase.NOT_INVITED},
            )
            for email, name, role, _title in spec.people:
                user, _ = _ensure_user(email, name, password, reset=reset)
                _ensure_totp(user, settings.DEMO_TOTP_SECRET)
                Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
            tenants.append((spec, tenant, n_devices))
        summary.timings["people"] = time.perf_counter() - started

        for spec, tenant, n_devices in tenants:
            if reset:
                started = time.perf_counter()
                _reset_environment(tenant)
                summary.timings[f"{spec.name} reset"] = time.perf_counter() - started
            created = _seed_tenant_environment(
                spec, tenant, seed=seed, devices=n_devices, now=now, timings=summary.timings
            )
            summary.created[spec.name] = created
            summary.counts[spec.name] = _counts(tenant)
            if reset or any(created.values()):
                Tenant.objects.filter(pk=tenant.pk).update(environment_changed_at=now)
                audit_record(
                    tenant=tenant,
                    acting_user=None,
                    action="environment.demo_seeded",
                    summary=f"Demo environment {'reset' if reset else 'seeded'} (seed {seed})",
                    target=tenant,
                    after={"seed": seed, "reset": reset, "created": created},
                )
        for spec, tenant, _n in tenants:
            _invite_if_due(spec, tenant, sdm)
    summary.timings["total"] = time.perf_counter() - total_started
    return summary


def _invite_if_due(spec: TenantSpec, tenant: Tenant, sdm: User) -> None:
    """A tenant the demo shows as invited is invited for real, through the
    onboarding service: the welcome email with its link is in the outbox, and
    the provider console shows who invited it and when."""
    tenant.refresh_from_db(fields=["service_phase"])
    if spec.phase == ServicePhase.INVITED and tenant.service_phase == ServicePhase.NOT_INVITED:
        invitation_send(tenant=tenant, acting_user=sdm)


def demo_data_present() -> bool:
    """Whether the demo tenants exist (``make run`` seeds only when they don't)."""
    return Tenant.objects.filter(primary_domain=CONTOSO_DOMAIN).exists()


def describe(summary: SeedSummary) -> str:
    return "\n".join(summary.lines())
