"""Writing the audit trail. Call from inside the service that makes the change,
so the audit row commits or rolls back with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils import timezone

from audit.models import AuditEvent
from core.context import current_request_context

if TYPE_CHECKING:
    from tenancy.models import Tenant, User

SYSTEM_ACTOR = "system"


def audit_record(
    *,
    tenant: Tenant | None,
    acting_user: User | None,
    action: str,
    summary: str,
    target: models.Model | None = None,
    before: Any = None,
    after: Any = None,
    ip_address: str | None = None,
    actor_label: str | None = None,
    user_agent: str | None = None,
) -> AuditEvent:
    """Append one audit event.

    ``acting_user`` is required (keyword-only, no default) so that every caller
    decides who acted; pass ``None`` only for the system (sweeps, tasks).
    The client IP and the request id come from the request being served
    (``core.context``); ``ip_address`` overrides the IP.
    """
    ctx = current_request_context()
    if ip_address is None and ctx is not None:
        ip_address = ctx.ip_address
    if user_agent is None:
        user_agent = ctx.user_agent if ctx is not None else ""
    if actor_label is None:
        actor_label = acting_user.email if acting_user is not None else SYSTEM_ACTOR
    return AuditEvent.objects.create(
        tenant=tenant,
        actor=acting_user,
        actor_label=actor_label,
        action=action,
        summary=summary[:500],
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        before=before,
        after=after,
        ip_address=ip_address,
        request_id=ctx.request_id if ctx is not None else "",
        user_agent=user_agent[:300],
        created_at=timezone.now(),
    )


@dataclass(frozen=True)
class SystemEvent:
    """One event of a bulk system change (see ``audit_record_system_events``)."""

    tenant_id: int
    action: str
    summary: str
    target: models.Model
    before: Any = None
    after: Any = None


def audit_record_system_events(*, events: list[SystemEvent], at: datetime) -> int:
    """Append many events done by the system (a sweep) in one INSERT, shaped as ``audit_record`` writes them.

    For sweeps that change many rows at once; call it in the same transaction as the change.
    """
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                tenant_id=event.tenant_id,
                actor=None,
                actor_label=SYSTEM_ACTOR,
                action=event.action,
                summary=event.summary[:500],
                target_type=event.target._meta.label_lower,
                target_id=str(event.target.pk),
                before=event.before,
                after=event.after,
                created_at=at,
            )
            for event in events
        ]
    )
    return len(events)
