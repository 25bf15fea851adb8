"""Reads for the Get started guide and the provider's onboarding console."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import JSONField, OuterRef, Q, QuerySet, Subquery

from onboarding.models import GUIDE_STEPS, GuideProgress, GuideStep, Invitation
from tenancy.models import ProviderOrganization, ServicePhase, Tenant


def guide_progress(*, tenant: Tenant) -> GuideProgress:
    """The tenant's progress (one query). A tenant whose guide nobody opened
    yet gets an unsaved default, so reading never writes."""
    progress = (
        GuideProgress.objects.select_related("updated_by", "finished_by", "started_by").filter(tenant=tenant).first()
    )
    if progress is None:
        progress = GuideProgress(tenant=tenant, version=0, completed_steps=[])
    return progress


@dataclass(frozen=True)
class StepState:
    step: GuideStep
    number: int
    # "done", "current" or "not_started"; the step on screen is "current".
    state: str
    reachable: bool

    @property
    def label(self) -> str:
        return self.step.label

    @property
    def slug(self) -> str:
        return self.step.value

    @property
    def state_label(self) -> str:
        return {"done": "Done", "current": "Current step", "not_started": "Not started"}[self.state]


def guide_step_states(*, progress: GuideProgress, viewing: GuideStep, browse_all: bool = False) -> list[StepState]:
    """The stepper: every step with its state. Pure; no queries.

    ``browse_all``: members who can only view the guide may look at every step;
    admins move through it in order."""
    from onboarding.services import step_reachable

    done = set(progress.completed_steps)
    states = []
    for number, step in enumerate(GUIDE_STEPS, start=1):
        if step == viewing:
            state = "current"
        elif step.value in done:
            state = "done"
        else:
            state = "not_started"
        states.append(
            StepState(step=step, number=number, state=state, reachable=browse_all or step_reachable(progress, step))
        )
    return states


def guide_contacts(*, tenant: Tenant, notification_type: str) -> list[Any]:
    """The contacts already added for one notification type (the contacts app's selector)."""
    from contacts.selectors import contacts_for_tenant

    return list(contacts_for_tenant(tenant=tenant).filter(notification_type=notification_type))


def guide_has_contact(*, tenant: Tenant, notification_type: str) -> bool:
    """Whether at least one contact of the type exists (one EXISTS query)."""
    from contacts.selectors import contacts_for_tenant

    return contacts_for_tenant(tenant=tenant).filter(notification_type=notification_type).exists()


def invitations_for_tenant(*, tenant: Tenant) -> QuerySet[Invitation]:
    return Invitation.objects.filter(tenant=tenant).select_related("first_opened_by", "outbox_message")


def _latest(field: str, output_field: Any = None) -> Subquery:
    latest = Invitation.objects.filter(tenant=OuterRef("pk")).order_by("-created_at", "-id").values(field)[:1]
    return Subquery(latest, output_field=output_field) if output_field is not None else Subquery(latest)


def console_tenants(*, organization: ProviderOrganization, phase: str | None = None, q: str = "") -> QuerySet[Tenant]:
    """Every tenant of the provider with its guide progress and latest
    invitation, in one query whatever the number of tenants (the latest
    invitation comes in as correlated subqueries, the progress as a join)."""
    qs = (
        Tenant.objects.filter(provider=organization)
        .select_related("guide_progress", "guide_progress__finished_by")
        .annotate(
            invited_at=_latest("created_at"),
            invited_by_label=_latest("invited_by_label"),
            invited_recipients=_latest("recipients", JSONField()),
            invitation_expires_at=_latest("expires_at"),
            invitation_opened_at=_latest("first_opened_at"),
        )
        .order_by("name", "pk")
    )
    if phase in ServicePhase.values:
        qs = qs.filter(service_phase=phase)
    term = (q or "").strip()
    if term:
        qs = qs.filter(Q(name__icontains=term) | Q(primary_domain__icontains=term))
    return qs


def readiness_for(*, tenant_ids: list[int]) -> dict[int, Any]:
    """The readiness summaries (readiness app), a fixed number of queries."""
    from readiness.selectors import readiness_summaries

    return readiness_summaries(tenant_ids=tenant_ids)


def invitation_for_token(*, token: str) -> Invitation:
    """The invitation a welcome link points at (one query), or a ``LinkError``.

    A bad signature or an unknown nonce is "invalid"; a signature older than
    ``ONBOARDING_LINK_MAX_AGE`` is "expired" (checked before any query). The
    revoked/expired state of the row itself is checked by the caller only
    after the user proved membership of the tenant, so the page never tells a
    stranger anything about someone else's invitation.
    """
    from django.core import signing

    from onboarding.exceptions import LinkExpired, LinkInvalid
    from onboarding.links import nonce_from_token

    try:
        nonce = nonce_from_token(token)
    except signing.SignatureExpired:
        raise LinkExpired() from None
    except signing.BadSignature:
        raise LinkInvalid() from None
    invitation = Invitation.objects.select_related("tenant").filter(nonce=nonce).first()
    if invitation is None:
        raise LinkInvalid()
    return invitation
