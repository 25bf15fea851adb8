"""Generic rule evaluators for catalogue entries.

``environment_facts`` gathers everything the rules need with a fixed number of
aggregate queries (devices by state in one GROUP BY, identities in one
aggregate, ...), whatever the size of the tenant. The evaluators are pure
functions of those facts, so evaluating the whole catalogue costs no further
query and no per-device Python loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from environment.models import (
    DEVICE_GAPS,
    IDENTITY_GAPS,
    PROTECTED_DEVICE,
    PROTECTED_IDENTITY,
    DeviceTally,
    DirectoryUser,
    DomainController,
    Licence,
    LicenceProduct,
    SecuritySetting,
)
from environment.security_settings import SETTINGS_BY_KEY
from readiness.catalogue import Entry
from readiness.models import ActionState
from tenancy.models import Tenant

MET = "met"
PARTIAL = "partial"
UNMET = "unmet"


@dataclass
class EnvironmentFacts:
    devices_total: int = 0
    devices_onboarded: int = 0
    devices_protected: int = 0
    devices_not_onboarded: int = 0
    devices_passive: int = 0
    devices_disabled: int = 0
    identities_total: int = 0
    identities_protected: int = 0
    enabled_users: int = 0
    domain_controllers_total: int = 0
    domain_controllers_with_sensor: int = 0
    seats: dict[str, int] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    provider_access: bool = False

    @property
    def devices_target(self) -> int:
        return self.seats.get(LicenceProduct.DEFENDER_ENDPOINT_P2, 0)

    @property
    def identities_target(self) -> int:
        return self.seats.get(LicenceProduct.DEFENDER_IDENTITY, 0)


def environment_facts(*, tenant: Tenant) -> EnvironmentFacts:
    """Read the tenant's environment in six aggregate queries (plus the provider-access check)."""
    from permissions.selectors import provider_access_granted

    facts = EnvironmentFacts()
    # 1. Devices: the protected ones and each reason the others aren't, summed from the device tally
    # (a few rows per tenant, kept by triggers) with the environment's own definitions.
    devices = DeviceTally.objects.filter(tenant=tenant).aggregate(
        n_protected=Coalesce(Sum("devices", filter=PROTECTED_DEVICE), 0),
        **{f"n_{reason}": Coalesce(Sum("devices", filter=q), 0) for reason, (_, q) in DEVICE_GAPS.items()},
    )
    facts.devices_protected = devices["n_protected"]
    facts.devices_not_onboarded = devices["n_not_onboarded"]
    facts.devices_passive = devices["n_passive"]
    facts.devices_disabled = devices["n_disabled"]
    # The reasons partition the unprotected devices, so the total is their sum by construction.
    facts.devices_onboarded = facts.devices_protected + facts.devices_passive + facts.devices_disabled
    facts.devices_total = facts.devices_onboarded + facts.devices_not_onboarded
    # 2. Identities: enabled users, the identities Defender for Identity can protect, and the protected ones.
    # (The aggregates are prefixed: an aggregate named like a field the filters read is refused.)
    identities = DirectoryUser.objects.filter(tenant=tenant, enabled=True).aggregate(
        n_enabled=Count("id"),
        n_protected=Count("id", filter=PROTECTED_IDENTITY),
        **{f"n_{reason}": Count("id", filter=q) for reason, (_, q) in IDENTITY_GAPS.items()},
    )
    facts.enabled_users = identities["n_enabled"]
    facts.identities_protected = identities["n_protected"]
    facts.identities_total = facts.identities_protected + sum(identities[f"n_{reason}"] for reason in IDENTITY_GAPS)
    # 3. Domain controllers.
    dcs = DomainController.objects.filter(tenant=tenant).aggregate(
        total=Count("id"), with_sensor=Count("id", filter=Q(sensor_installed=True))
    )
    facts.domain_controllers_total = dcs["total"]
    facts.domain_controllers_with_sensor = dcs["with_sensor"]
    # 4. Licences and 5. settings: a handful of rows each.
    facts.seats = dict(Licence.objects.filter(tenant=tenant).values_list("product", "seats"))
    stored = dict(SecuritySetting.objects.filter(tenant=tenant).values_list("key", "value"))
    facts.settings = {key: stored.get(key, spec.default) for key, spec in SETTINGS_BY_KEY.items()}
    # 6. Service provider access, owned by Permissions.
    facts.provider_access = bool(provider_access_granted(tenant=tenant))
    return facts


@dataclass(frozen=True)
class RuleResult:
    outcome: str  # MET, PARTIAL or UNMET
    detail: str
    done: int | None = None
    total: int | None = None
    value: str = ""


def _setting_in(facts: EnvironmentFacts, params: dict[str, Any]) -> RuleResult:
    key = params["key"]
    spec = SETTINGS_BY_KEY[key]
    value = facts.settings.get(key, spec.default)
    label = dict(spec.choices).get(value, value)
    if value in params["values"]:
        return RuleResult(MET, f"{spec.label}: {label}.", value=value)
    wanted = " or ".join(dict(spec.choices).get(v, v) for v in params["values"])
    if value in params.get("partial_values", []):
        return RuleResult(PARTIAL, f"{spec.label} is {label}; it needs to be {wanted}.", value=value)
    return RuleResult(UNMET, f"{spec.label} is {label}; it needs to be {wanted}.", value=value)


def _device_ratio(facts: EnvironmentFacts, params: dict[str, Any]) -> RuleResult:
    done, total = facts.devices_protected, facts.devices_onboarded
    if total == 0:
        return RuleResult(UNMET, "No devices are onboarded to Defender for Endpoint yet.", 0, 0)
    pct = 100 * done // total
    detail = (
        f"{done:,} of {total:,} onboarded devices ({pct}%) have Defender Antivirus in active mode; "
        f"{facts.devices_passive:,} passive, {facts.devices_disabled:,} disabled."
    )
    if done == total:
        return RuleResult(MET, f"All {total:,} onboarded devices have Defender Antivirus in active mode.", done, total)
    return RuleResult(PARTIAL if done else UNMET, detail, done, total)


def _dc_sensor_coverage(facts: EnvironmentFacts, params: dict[str, Any]) -> RuleResult:
    done, total = facts.domain_controllers_with_sensor, facts.domain_controllers_total
    if total == 0:
        return RuleResult(MET, "No on-premises domain controllers were found.", 0, 0)
    if done == total:
        return RuleResult(MET, f"All {total:,} domain controllers have a sensor.", done, total)
    detail = f"{done:,} of {total:,} domain controllers have a sensor; {total - done:,} still need one."
    return RuleResult(PARTIAL if done else UNMET, detail, done, total)


def _licence_covers_enabled_users(facts: EnvironmentFacts, params: dict[str, Any]) -> RuleResult:
    seats = sum(facts.seats.get(p, 0) for p in params["products"])
    users = facts.enabled_users
    if seats >= users:
        return RuleResult(MET, f"{seats:,} Entra ID P1 or P2 licences cover all {users:,} enabled users.", users, users)
    detail = (
        f"{seats:,} Entra ID P1 or P2 licences for {users:,} enabled users: {users - seats:,} more "
        f"licence{'s are' if users - seats != 1 else ' is'} needed, or as many accounts disabled."
    )
    return RuleResult(PARTIAL if seats else UNMET, detail, seats, users)


def _provider_access_granted(facts: EnvironmentFacts, params: dict[str, Any]) -> RuleResult:
    if facts.provider_access:
        return RuleResult(MET, "Our experts have service provider access.")
    return RuleResult(UNMET, "Service provider access hasn't been granted.")


RULES: dict[str, Callable[[EnvironmentFacts, dict[str, Any]], RuleResult]] = {
    "setting_in": _setting_in,
    "device_ratio": _device_ratio,
    "dc_sensor_coverage": _dc_sensor_coverage,
    "licence_covers_enabled_users": _licence_covers_enabled_users,
    "provider_access_granted": _provider_access_granted,
}


def evaluate(entry: Entry, facts: EnvironmentFacts) -> tuple[str, RuleResult]:
    """The action status for one entry: Completed, In progress or Not started (its priority is the entry's)."""
    result = RULES[entry.rule.type](facts, entry.rule.params)
    if result.outcome == MET:
        return ActionState.COMPLETED, result
    if result.outcome == PARTIAL:
        return ActionState.IN_PROGRESS, result
    return ActionState.NOT_STARTED, result
