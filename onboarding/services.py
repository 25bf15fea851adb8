"""Onboarding services: inviting a tenant and moving through the Get started guide.

Every change is audited in the same transaction; the welcome email is an
outbox row written in the same transaction as the invitation.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from exclusions.services import exclusion_guide_finish
from onboarding.exceptions import (
    GuideConflict,
    GuideNotAvailable,
    InvitationError,
    SkipNeedsConfirmation,
    StepIncomplete,
)
from onboarding.links import link_max_age, link_url, new_nonce
from onboarding.models import (
    CONTACT_STEPS,
    GUIDE_STEPS,
    OPTIONAL_STEPS,
    REQUIRED_STEPS,
    GuideProgress,
    GuideStep,
    Invitation,
    required_after,
    step_index,
)
from onboarding.selectors import RESENDABLE_PHASES, guide_has_contact
from outbox.services import outbox_enqueue
from permissions.exceptions import StaleEdit
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set, provider_access_restore
from tenancy.models import ServicePhase, Tenant, User
from tenancy.selectors import tenant_admin_emails
from tenancy.services import tenant_change_phase

WELCOME_KIND = "onboarding.welcome"
WELCOME_SUBJECT = "Get started with Microsoft Defender Experts for XDR"


# --- Invitation ---------------------------------------------------------------------


@transaction.atomic
def invitation_send(
    *, tenant: Tenant, acting_user: User, resend: bool = False, expected_latest_id: int | None = None
) -> Invitation:
    """ "Ready to onboard": email the tenant's admins a link to the guide.

    The first send moves the tenant from Not invited to Invited. A resend
    issues a new link and revokes the tenant's earlier links (decision: only
    the most recent welcome email works, so a forwarded or stale email can't
    be used once the provider has sent a new one). The tenant row is locked
    so two staff members clicking at once send one email, not two.

    ``expected_latest_id``: the newest invitation the staff member saw when
    they chose Resend. If another one was sent since (a double-click, a second
    tab, a colleague), nothing is sent again: each resend kills the previous
    link, so a second email seconds later would only confuse the recipients.
    """
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if resend and expected_latest_id is not None:
        latest = Invitation.objects.filter(tenant=locked).order_by("-created_at", "-id").first()
        if latest is not None and latest.pk != expected_latest_id:
            raise InvitationError(
                f"The welcome email was already resent to {', '.join(latest.recipients)} at "
                f"{latest.created_at:%H:%M} UTC by {latest.invited_by_label}, so it wasn't sent again. "
                "Its link is the one that works."
            )
    phase = ServicePhase(locked.service_phase)
    if resend and phase not in RESENDABLE_PHASES:
        raise InvitationError(
            f"{locked.name} is in the {phase.label} phase; the welcome email can only be resent "
            "while the organization is Invited or Setting up."
        )
    if not resend and phase != ServicePhase.NOT_INVITED:
        raise InvitationError(f"{locked.name} has already been invited ({phase.label}). Use Resend instead.")
    recipients = tenant_admin_emails(locked)
    if not recipients:
        raise InvitationError(
            f"{locked.name} has no active Global Administrator or Security Administrator to send the welcome email to."
        )
    now = timezone.now()
    revoked = Invitation.objects.filter(tenant=locked, revoked_at__isnull=True).update(revoked_at=now)
    nonce = new_nonce()
    invitation = Invitation.objects.create(
        tenant=locked,
        nonce=nonce,
        invited_by=acting_user,
        invited_by_label=acting_user.display_name or acting_user.email,
        recipients=recipients,
        is_resend=resend,
        created_at=now,
        expires_at=now + timedelta(seconds=link_max_age()),
    )
    message = outbox_enqueue(
        tenant=locked,
        kind=WELCOME_KIND,
        to=recipients,
        subject=WELCOME_SUBJECT,
        template="emails/onboarding_welcome",
        context={
            "link": link_url(nonce),
            "expires_at": invitation.expires_at,
            "sender_name": invitation.invited_by_label,
            "organization_name": locked.name,
        },
        # One email per invitation, however often this transaction's caller retries.
        dedupe_key=f"{WELCOME_KIND}:{invitation.pk}",
    )
    invitation.outbox_message = message
    invitation.save(update_fields=["outbox_message"])
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="onboarding.welcome_resent" if resend else "onboarding.welcome_sent",
        summary=(
            f"{'Resent' if resend else 'Sent'} the Defender Experts welcome email to {', '.join(recipients)}"
            + (f"; {revoked} earlier link{'s' if revoked != 1 else ''} stopped working" if revoked else "")
        ),
        target=invitation,
        after={"recipients": recipients, "expires_at": invitation.expires_at.isoformat(), "revoked_links": revoked},
    )
    if not resend:
        tenant_change_phase(
            tenant=locked, acting_user=acting_user, to_phase=ServicePhase.INVITED, reason="Welcome email sent"
        )
    tenant.service_phase = locked.service_phase
    tenant.service_phase_changed_at = locked.service_phase_changed_at
    return invitation


@transaction.atomic
def invitation_open(*, invitation: Invitation, acting_user: User, can_manage: bool) -> None:
    """A member of the tenant followed the link: note the first opening, and
    start the guide if they're an admin (and the guide is open to the tenant)."""
    opened = Invitation.objects.filter(pk=invitation.pk, first_opened_at__isnull=True).update(
        first_opened_at=timezone.now(), first_opened_by=acting_user
    )
    if opened:
        audit_record(
            tenant=invitation.tenant,
            acting_user=acting_user,
            action="onboarding.welcome_link_opened",
            summary=f"{acting_user.email} opened the welcome email's link",
            target=invitation,
        )
    if can_manage and invitation.tenant.service_phase != ServicePhase.NOT_INVITED:
        guide_start(tenant=invitation.tenant, acting_user=acting_user)


# --- The guide ----------------------------------------------------------------------


def _locked_progress(tenant: Tenant) -> GuideProgress:
    """The tenant's progress row, locked until the transaction ends (created if missing)."""
    if tenant.service_phase == ServicePhase.NOT_INVITED:
        raise GuideNotAvailable()
    locked = GuideProgress.objects.select_for_update(of=("self",)).select_related("updated_by")
    try:
        return locked.get(tenant=tenant)
    except GuideProgress.DoesNotExist:
        # Rare (the guide is normally started on opening); a racing creator is fine.
        GuideProgress.objects.get_or_create(tenant=tenant)
        return locked.get(tenant=tenant)


@transaction.atomic
def guide_start(*, tenant: Tenant, acting_user: User) -> GuideProgress:
    """An admin opened the guide: Invited -> Setting up (once), and the
    progress row exists from now on."""
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if locked.service_phase == ServicePhase.NOT_INVITED:
        raise GuideNotAvailable()
    progress, created = GuideProgress.objects.get_or_create(
        tenant=locked, defaults={"started_by": acting_user, "updated_by": acting_user}
    )
    if created:
        audit_record(
            tenant=locked,
            acting_user=acting_user,
            action="onboarding.guide_started",
            summary=f"{acting_user.email} started the Get started guide",
            target=progress,
        )
    if locked.service_phase == ServicePhase.INVITED:
        tenant_change_phase(
            tenant=locked, acting_user=acting_user, to_phase=ServicePhase.SETTING_UP, reason="Get started guide opened"
        )
    tenant.service_phase = locked.service_phase
    tenant.service_phase_changed_at = locked.service_phase_changed_at
    return progress


def _already_saved(progress: GuideProgress, *, step: GuideStep, expected_version: int, acting_user: User) -> bool:
    """Whether this submit was already saved (``True``: nothing to do again), else checks it may be saved.

    The same admin's earlier submit of this very step since the page was loaded (a double-click, a resubmitted
    form, a second tab) is not a conflict: the step is saved, and the guide simply moves on. Anyone else's
    change since then is a ``GuideConflict``.
    """
    if progress.version != expected_version:
        if progress.updated_by_id == acting_user.pk and step.value in progress.completed_steps:
            return True
        raise GuideConflict(progress)
    if not progress.reaches(step):
        raise StepIncomplete(f"Complete {GuideStep(progress.current_step).label} first.")
    return False


def _advance(progress: GuideProgress, *, tenant: Tenant, step: GuideStep, acting_user: User) -> GuideProgress:
    before = {"current_step": progress.current_step, "completed_steps": list(progress.completed_steps)}
    if step.value not in progress.completed_steps:
        progress.completed_steps = [s.value for s in GUIDE_STEPS if s.value in {*progress.completed_steps, step.value}]
    idx = step_index(step)
    following = required_after(step)
    # An optional step never moves the tenant's current step (it is reached from the step before it).
    if (
        following is not None
        and step not in OPTIONAL_STEPS
        and step_index(progress.current_step) <= idx
        and not progress.is_finished
    ):
        progress.current_step = following.value
    if before == {"current_step": progress.current_step, "completed_steps": list(progress.completed_steps)}:
        # Next on a step that was already done (Back, or a reopened guide):
        # the guide's progress doesn't change, so nothing is written or audited
        # (a changed setting is audited by the service that changed it).
        return progress
    progress.version += 1
    progress.updated_at = timezone.now()
    progress.updated_by = acting_user
    progress.save()
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="onboarding.guide_step_completed",
        summary=f"{acting_user.email} completed the {step.label} step of the Get started guide",
        target=progress,
        before=before,
        after={"current_step": progress.current_step, "completed_steps": list(progress.completed_steps)},
    )
    return progress


@transaction.atomic
def guide_permissions_submit(
    *,
    tenant: Tenant,
    acting_user: User,
    investigate: bool,
    respond: bool,
    expected_version: int,
    permissions_version: int,
    confirm_skip: bool = False,
    recently_authenticated: bool = False,
    restore_access: bool = False,
) -> GuideProgress:
    """Step 1: save the access levels through the Permissions service, then move on.

    Going on without Respond directly to active threats needs confirmation
    (the seed's IMPORTANT warning). Errors of the Permissions service
    (``StaleEdit``, ``ReauthenticationRequired``, ...) propagate and roll
    the whole step back.

    Service provider access removed on the Permissions page stays removed
    unless the admin explicitly restores it here (``restore_access``, sent
    only by the step as it is shown while access is removed); it is restored
    through the Permissions service's ``provider_access_restore``. A form
    rendered before someone else removed or restored access is a stale edit:
    a removal is never undone by a plain Next.

    A double submit (see ``_already_saved``) returns the progress unchanged.
    """
    progress = _locked_progress(tenant)
    if _already_saved(progress, step=GuideStep.PERMISSIONS, expected_version=expected_version, acting_user=acting_user):
        # Saved already, but only "the same" if what is granted now is what this form asks for.
        current = access_levels_state(tenant=tenant)
        if (current.investigate, current.respond) != (investigate, respond):
            raise GuideConflict(progress)
        return progress
    if not investigate and not respond:
        raise StepIncomplete(
            "Choose at least one access level. Our experts need Investigate incidents and guide my responses "
            "to monitor your organization."
        )
    if not respond and not confirm_skip:
        raise SkipNeedsConfirmation()
    state = access_levels_state(tenant=tenant)
    if state.removed or restore_access:
        if not (state.removed and restore_access):
            raise StaleEdit(current=state)
        provider_access_restore(
            tenant=tenant,
            acting_user=acting_user,
            expected_version=permissions_version,
            investigate=investigate,
            respond=respond,
            recently_authenticated=recently_authenticated,
        )
    elif (bool(state.investigate), bool(state.respond)) != (investigate, respond):
        access_levels_set(
            tenant=tenant,
            acting_user=acting_user,
            investigate=investigate,
            respond=respond,
            expected_version=permissions_version,
            confirm_reduced_access=confirm_skip,
            recently_authenticated=recently_authenticated,
        )
    return _advance(progress, tenant=tenant, step=GuideStep.PERMISSIONS, acting_user=acting_user)


@transaction.atomic
def guide_exclusions_finish(
    *, tenant: Tenant, acting_user: User, keep: bool, expected_version: int, exclusions_version: int
) -> GuideProgress:
    """The Exclusions step: Next keeps the groups added in it, Skip discards them (the later document's rule);
    either way the step is done. The exclusion list is versioned on its own (a stale list is a 409)."""
    progress = _locked_progress(Tenant.objects.select_for_update().get(pk=tenant.pk))
    if _already_saved(progress, step=GuideStep.EXCLUSIONS, expected_version=expected_version, acting_user=acting_user):
        return progress
    exclusion_guide_finish(tenant=tenant, acting_user=acting_user, keep=keep, expected_version=exclusions_version)
    return _advance(progress, tenant=tenant, step=GuideStep.EXCLUSIONS, acting_user=acting_user)


@transaction.atomic
def guide_step_complete(*, tenant: Tenant, acting_user: User, step: GuideStep, expected_version: int) -> GuideProgress:
    """Steps 2-4: contacts steps need at least one contact of their type.

    A double submit (see ``_already_saved``) returns the progress unchanged."""
    if step in (GuideStep.PERMISSIONS, GuideStep.EXCLUSIONS, GuideStep.NEXT_STEPS):
        raise ValueError(f"{step} has its own service")
    progress = _locked_progress(tenant)
    if _already_saved(progress, step=step, expected_version=expected_version, acting_user=acting_user):
        return progress
    if step in CONTACT_STEPS:
        if not guide_has_contact(tenant=tenant, notification_type=CONTACT_STEPS[step]):
            noun = "an incident contact" if step == GuideStep.INCIDENT_CONTACT else "a service review contact"
            raise StepIncomplete(f"Add {noun} before you continue, so our experts know who to reach.")
    return _advance(progress, tenant=tenant, step=step, acting_user=acting_user)


@transaction.atomic
def guide_finish(*, tenant: Tenant, acting_user: User, expected_version: int) -> GuideProgress:
    """Close on the Next steps page: record who finished and when, and move the tenant to Preparing.

    Closing a guide that was finished before keeps the original record and
    the current settings; nothing is reset. A double submit (see ``_already_saved``)
    returns the progress unchanged.
    """
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    progress = _locked_progress(locked)
    if _already_saved(progress, step=GuideStep.NEXT_STEPS, expected_version=expected_version, acting_user=acting_user):
        return progress
    missing = [s.label for s in REQUIRED_STEPS[:-1] if s.value not in progress.completed_steps]
    if missing:
        raise StepIncomplete(f"Complete {', '.join(missing)} first.")
    first_finish = not progress.is_finished
    if first_finish:
        # Permissions was done, but access may have been removed (or run out) since:
        # the service can't start without it, so the first Close waits for it.
        access = access_levels_state(tenant=locked)
        if access.removed:
            raise StepIncomplete(
                "Service provider access was removed, so our experts can't sign in to your tenant. "
                "Restore it in Permissions (step 1), then select Close."
            )
        if not (access.provider_access_granted and access.any_level):
            raise StepIncomplete(
                "Our experts have no access level. Choose one in Permissions (step 1), then select Close."
            )
        progress.finished_at = timezone.now()
        progress.finished_by = acting_user
    if GuideStep.NEXT_STEPS.value not in progress.completed_steps:
        progress.completed_steps = [*progress.completed_steps, GuideStep.NEXT_STEPS.value]
    progress.current_step = GuideStep.NEXT_STEPS
    progress.version += 1
    progress.updated_at = timezone.now()
    progress.updated_by = acting_user
    progress.save()
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="onboarding.guide_finished" if first_finish else "onboarding.guide_closed",
        summary=(
            f"{acting_user.email} finished the Get started guide"
            if first_finish
            else f"{acting_user.email} reviewed and closed the Get started guide"
        ),
        target=progress,
    )
    if locked.service_phase == ServicePhase.INVITED:
        tenant_change_phase(tenant=locked, acting_user=acting_user, to_phase=ServicePhase.SETTING_UP)
    if locked.service_phase == ServicePhase.SETTING_UP:
        tenant_change_phase(
            tenant=locked, acting_user=acting_user, to_phase=ServicePhase.PREPARING, reason="Get started guide finished"
        )
    tenant.service_phase = locked.service_phase
    tenant.service_phase_changed_at = locked.service_phase_changed_at
    return progress
