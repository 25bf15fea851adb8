"""Reads for the Get started guide and the provider's onboarding console, and
each page's state (the views only add what comes from the request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db.models import JSONField, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from contacts.selectors import contacts_by_type, contacts_for_tenant, directory_search, notification_type_text
from core.keyset import keyset_page
from onboarding.exceptions import LinkExpired, LinkInvalid
from onboarding.links import link_lifetime_text, nonce_from_token
from onboarding.models import (
    CONTACT_STEPS,
    GUIDE_STEPS,
    OPTIONAL_STEPS,
    REQUIRED_STEPS,
    GuideProgress,
    GuideStep,
    Invitation,
    step_index,
)
from permissions.selectors import access_health, access_levels_state, access_snapshot
from readiness.selectors import ReadinessSummary, readiness_summaries
from tenancy.models import ProviderOrganization, ServicePhase, Tenant
from tenancy.selectors import tenant_admin_emails

# Phases in which the welcome email can be sent again: the guide isn't done yet.
RESENDABLE_PHASES = frozenset({ServicePhase.INVITED, ServicePhase.SETTING_UP})
CONSOLE_PAGE_SIZE = 50


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
    done = set(progress.completed_steps)
    states = []
    for number, step in enumerate(GUIDE_STEPS, start=1):
        if step == viewing:
            state = "current"
        elif step.value in done:
            state = "done"
        else:
            state = "not_started"
        states.append(StepState(step=step, number=number, state=state, reachable=browse_all or progress.reaches(step)))
    return states


def guide_contacts(*, tenant: Tenant, notification_type: str) -> list[Any]:
    """The contacts already added for one notification type (the contacts app's selector)."""
    return list(contacts_for_tenant(tenant=tenant).filter(notification_type=notification_type))


def guide_has_contact(*, tenant: Tenant, notification_type: str) -> bool:
    """Whether at least one contact of the type exists (one EXISTS query)."""
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


def readiness_for(*, tenant_ids: list[int]) -> dict[int, ReadinessSummary]:
    """The readiness summaries (readiness app), a fixed number of queries."""
    return readiness_summaries(tenant_ids=tenant_ids)


def invitation_for_token(*, token: str) -> Invitation:
    """The invitation a welcome link points at (one query), or a ``LinkError``.

    A bad signature or an unknown nonce is "invalid"; a signature older than
    ``ONBOARDING_LINK_MAX_AGE`` is "expired" (checked before any query). The
    revoked/expired state of the row itself is checked by the caller only
    after the user proved membership of the tenant, so the page never tells a
    stranger anything about someone else's invitation.
    """
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


# --- Page state ----------------------------------------------------------------------


def phase_states(current: str) -> list[dict[str, str]]:
    """Invited -> ... -> Active, each "done", "current" or "upcoming" (choices are in order)."""
    values = [v for v in ServicePhase.values if v != ServicePhase.NOT_INVITED]
    position = values.index(current) if current in values else -1
    return [
        {
            "value": v,
            "label": ServicePhase(v).label,
            "state": "done" if i < position else "current" if i == position else "upcoming",
        }
        for i, v in enumerate(values)
    ]


def settings_page(*, tenant: Tenant) -> dict[str, Any]:
    """Settings > Defender Experts: the guide's progress, the experts' access health and the service phases."""
    progress = guide_progress(tenant=tenant)
    return {
        "progress": progress,
        # Removed, expired or expiring access is the first thing an admin must see here.
        "access_health": access_health(tenant=tenant),
        "current_step_label": GuideStep(progress.current_step).label,
        "step_number": step_index(progress.current_step) + 1,
        "step_total": len(GUIDE_STEPS),
        # Steps done count only the required ones (an optional step may be left out).
        "required_total": len(REQUIRED_STEPS),
        "available": tenant.service_phase != ServicePhase.NOT_INVITED,
        "phases": phase_states(tenant.service_phase),
    }


def guide_access(*, tenant: Tenant) -> dict[str, Any]:
    """The experts' access as the Permissions page sees it: levels and health
    from one snapshot (the permissions app's two queries)."""
    snapshot = access_snapshot(tenant=tenant)
    return {
        "access": access_levels_state(tenant=tenant, snapshot=snapshot),
        "access_health": access_health(tenant=tenant, snapshot=snapshot),
    }


def guide_overview(*, tenant: Tenant) -> dict[str, Any]:
    """The Get started page: every step with its state, and where the guide resumes (one query)."""
    progress = guide_progress(tenant=tenant)
    resume = GuideStep.PERMISSIONS if progress.is_finished else GuideStep(progress.current_step)
    return {
        "progress": progress,
        "steps": guide_step_states(progress=progress, viewing=resume, browse_all=True),
        "resume_step": resume,
        "started": bool(progress.completed_steps),
        "required_total": len(REQUIRED_STEPS),
    }


def guide_step_page(
    *,
    tenant: Tenant,
    step: GuideStep,
    progress: GuideProgress,
    can_manage: bool,
    choice: dict[str, bool] | None = None,
    query: str = "",
) -> dict[str, Any]:
    """The state of one step of the guide: the stepper, and what the step shows.

    ``choice``: the access levels to show ticked on Permissions (the admin's own, after an error or the password
    prompt); by default what is granted. ``query``: the directory search on a contacts step.
    """
    steps = guide_step_states(progress=progress, viewing=step, browse_all=not can_manage)
    idx = step_index(step)
    page: dict[str, Any] = {
        "step": step,
        "steps": steps,
        "step_number": idx + 1,
        "step_total": len(GUIDE_STEPS),
        # Steps done count only the required ones (an optional step may be left out).
        "required_total": len(REQUIRED_STEPS),
        "progress": progress,
        # Back goes to the step before, passing over optional steps (reached only from the step before them).
        "previous_step": next((s for s in reversed(GUIDE_STEPS[:idx]) if s not in OPTIONAL_STEPS), None),
        "following_step": GUIDE_STEPS[idx + 1] if idx + 1 < len(GUIDE_STEPS) else None,
        "following_reachable": idx + 1 < len(GUIDE_STEPS) and steps[idx + 1].reachable,
        "read_only": not can_manage,
    }
    if step == GuideStep.PERMISSIONS:
        page.update(guide_access(tenant=tenant))
        state = page["access"]
        if choice is None:
            if not can_manage or state.removed:
                # Read-only viewers, and anyone looking at removed access, see what
                # is actually granted: a pre-ticked default would look like access
                # the experts don't have.
                choice = {"investigate": state.investigate, "respond": state.respond}
            else:
                # Nothing granted yet: Investigate is the default level.
                choice = {"investigate": state.investigate or not state.respond, "respond": state.respond}
        page["choice"] = choice
    elif step in CONTACT_STEPS:
        notification_type = CONTACT_STEPS[step]
        label, help_text = notification_type_text(notification_type)
        page.update(
            {
                "notification_type": notification_type,
                "notification_type_label": label,
                "notification_type_help": help_text,
                "contacts": guide_contacts(tenant=tenant, notification_type=notification_type),
                "q": query,
                "results": directory_search(tenant=tenant, query=query) if query else [],
            }
        )
    elif step == GuideStep.NEXT_STEPS:
        # The page that carries Close: what is set up, and what is missing before Close can finish the guide.
        grouped = contacts_by_type(tenant=tenant)
        page.update(guide_access(tenant=tenant))
        page["incident_contacts"] = grouped[CONTACT_STEPS[GuideStep.INCIDENT_CONTACT]]
        page["service_review_contacts"] = grouped[CONTACT_STEPS[GuideStep.SERVICE_REVIEW_CONTACT]]
    return page


def console_page(
    *, organization: ProviderOrganization, phase: str, q: str, page_number: Any, after: Any = "", before: Any = ""
) -> dict[str, Any]:
    """The provider's onboarding console: every tenant with its phase, invitation, guide progress and readiness.

    Queries: the page's tenants with their progress and latest invitation (1), found by keyset on
    (name, id) from the ``after``/``before`` cursor, the count bounded by a LIMIT (1) and the readiness
    summaries (fixed, readiness app), whatever the number of tenants and on any page.
    """
    page = keyset_page(
        console_tenants(organization=organization, phase=phase, q=q),
        field="name",
        per_page=CONSOLE_PAGE_SIZE,
        after=after,
        before=before,
        number=page_number,
    )
    tenants = list(page.object_list)
    readiness = readiness_for(tenant_ids=[t.pk for t in tenants]) if tenants else {}
    rows = []
    for t in tenants:
        progress: GuideProgress | None = getattr(t, "guide_progress", None)
        rows.append(
            {
                "tenant": t,
                "progress": progress,
                "progress_step_label": GuideStep(progress.current_step).label if progress else "",
                "progress_step_number": step_index(progress.current_step) + 1 if progress else 0,
                "readiness": readiness.get(t.pk),
                "can_invite": t.service_phase == ServicePhase.NOT_INVITED,
                "can_resend": t.service_phase in RESENDABLE_PHASES,
            }
        )
    return {
        "page": page,
        "rows": rows,
        "phases": ServicePhase.choices,
        "now": timezone.now(),
        "step_total": len(GUIDE_STEPS),
        # Steps done count only the required ones (an optional step may be left out).
        "required_total": len(REQUIRED_STEPS),
    }


def provider_tenant_page(*, tenant: Tenant) -> dict[str, Any]:
    """One tenant's onboarding for the provider: who gets the welcome email, every link sent, and the guide."""
    progress = guide_progress(tenant=tenant)
    viewing = GuideStep(progress.current_step)
    return {
        "tenant": tenant,
        "recipients": tenant_admin_emails(tenant),
        "invitations": list(invitations_for_tenant(tenant=tenant)),
        "progress": progress,
        "steps": guide_step_states(progress=progress, viewing=viewing),
        "can_invite": tenant.service_phase == ServicePhase.NOT_INVITED,
        "can_resend": tenant.service_phase in RESENDABLE_PHASES,
        "link_lifetime": link_lifetime_text(),
    }
