from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.errors import Conflict
from tenancy.models import ServicePhase, Tenant, User

# The service moves forward one phase at a time.
PHASE_TRANSITIONS: dict[str, frozenset[str]] = {
    ServicePhase.NOT_INVITED: frozenset({ServicePhase.INVITED}),
    ServicePhase.INVITED: frozenset({ServicePhase.SETTING_UP}),
    ServicePhase.SETTING_UP: frozenset({ServicePhase.PREPARING}),
    ServicePhase.PREPARING: frozenset({ServicePhase.MONITORING}),
    ServicePhase.MONITORING: frozenset({ServicePhase.ACTIVE}),
    ServicePhase.ACTIVE: frozenset(),
}


class PhaseTransitionError(Conflict):
    """The tenant isn't in a phase that can move to the one asked for."""


@transaction.atomic
def tenant_change_phase(
    *, tenant: Tenant, acting_user: User | None, to_phase: ServicePhase | str, reason: str = ""
) -> Tenant:
    """Move a tenant to its next service phase, audited.

    The row is locked so two concurrent moves cannot both pass the check.
    """
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    current = locked.service_phase
    target = ServicePhase(to_phase)
    if target not in PHASE_TRANSITIONS[ServicePhase(current)]:
        raise PhaseTransitionError(
            f"{locked.name} is in the {ServicePhase(current).label} phase and can't move to {target.label}."
        )
    locked.service_phase = target
    locked.service_phase_changed_at = timezone.now()
    locked.save(update_fields=["service_phase", "service_phase_changed_at"])
    summary = f"Service phase changed from {ServicePhase(current).label} to {target.label}"
    if reason:
        summary += f" (reason: {reason})"
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="tenant.phase_changed",
        summary=summary,
        target=locked,
        before={"service_phase": current},
        after={"service_phase": target.value, "reason": reason} if reason else {"service_phase": target.value},
    )
    tenant.service_phase = locked.service_phase
    tenant.service_phase_changed_at = locked.service_phase_changed_at
    return locked
