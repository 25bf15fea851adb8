"""Settings > Defender Experts, the Get started guide, the welcome link and
the provider's onboarding console. Views only translate HTTP: the rules live
in ``onboarding.services``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url

from onboarding.exceptions import (
    GuideConflict,
    GuideNotAvailable,
    InvitationError,
    LinkError,
    LinkExpired,
    LinkReplaced,
    OnboardingError,
    SkipNeedsConfirmation,
    StepAlreadySaved,
)
from onboarding.links import link_lifetime_text
from onboarding.models import GUIDE_STEPS, GuideProgress, GuideStep, Invitation
from onboarding.selectors import (
    console_tenants,
    guide_contacts,
    guide_progress,
    guide_step_states,
    invitation_for_token,
    invitations_for_tenant,
    readiness_for,
)
from onboarding.services import (
    CONTACT_STEPS,
    RESENDABLE_PHASES,
    guide_finish,
    guide_permissions_submit,
    guide_start,
    guide_step_complete,
    invitation_open,
    invitation_send,
    step_index,
    step_reachable,
)
from tenancy.access import provider_tenant_or_404, provider_view, require_manage, tenant_view
from tenancy.bounds import parse_int
from tenancy.middleware import SESSION_TENANT_KEY
from tenancy.models import Membership, ServicePhase
from tenancy.reauth import recently_authenticated
from tenancy.selectors import tenant_admin_emails

READ_ONLY_SENTENCE = (
    "Only a Global Administrator or a Security Administrator can complete this guide. "
    "You can view the steps and the current settings."
)
CONSOLE_PAGE_SIZE = 50
# The Permissions step's button while service provider access is removed: going
# on restores it, so the button says so (a plain "Next" never undoes a removal).
RESTORE_LABEL = "Restore access and continue"
CONTACTS_ANCHOR = "added-heading"


def step_url(step: GuideStep | str) -> str:
    return reverse("onboarding:step", kwargs={"step": GuideStep(step).value})


# --- Settings > Defender Experts ----------------------------------------------------


@tenant_view
def index(request: HttpRequest) -> HttpResponse:
    from permissions.selectors import access_health

    tenant = request.tenant  # type: ignore[attr-defined]
    progress = guide_progress(tenant=tenant)
    return render(
        request,
        "onboarding/index.html",
        {
            "nav": "defender_experts",
            "progress": progress,
            "can_manage": request.membership.can_manage,  # type: ignore[attr-defined]
            # Removed, expired or expiring access is the first thing an admin must see here.
            "access_health": access_health(tenant=tenant),
            "current_step_label": GuideStep(progress.current_step).label,
            "step_number": step_index(progress.current_step) + 1,
            "step_total": len(GUIDE_STEPS),
            "available": tenant.service_phase != ServicePhase.NOT_INVITED,
            "phases": _phase_states(tenant.service_phase),
        },
    )


def _phase_states(current: str) -> list[dict[str, str]]:
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


def _unavailable(request: HttpRequest) -> HttpResponse:
    return render(request, "onboarding/unavailable.html", {"nav": "get_started", "message": GuideNotAvailable.message})


def _start_if_admin(request: HttpRequest) -> None:
    """An admin opening the guide moves Invited -> Setting up (once); only then
    does this write, so later visits cost no extra queries."""
    tenant = request.tenant  # type: ignore[attr-defined]
    membership = request.membership  # type: ignore[attr-defined]
    if membership.can_manage and tenant.service_phase == ServicePhase.INVITED:
        guide_start(tenant=tenant, acting_user=request.user)  # type: ignore[arg-type]


@tenant_view
def get_started(request: HttpRequest) -> HttpResponse:
    """The guide's entry (sidebar, landing page): resume at the tenant's current step."""
    tenant = request.tenant  # type: ignore[attr-defined]
    if tenant.service_phase == ServicePhase.NOT_INVITED:
        return _unavailable(request)
    _start_if_admin(request)
    progress = guide_progress(tenant=tenant)
    # A finished guide reopens at the beginning to review (never reset).
    target = GuideStep.PERMISSIONS if progress.is_finished else GuideStep(progress.current_step)
    return redirect(step_url(target))


@tenant_view
@require_http_methods(["GET", "POST"])
def guide_step(request: HttpRequest, step: str) -> HttpResponse:
    try:
        current = GuideStep(step)
    except ValueError:
        raise Http404 from None
    tenant = request.tenant  # type: ignore[attr-defined]
    if request.method == "POST":
        require_manage(request)
    if tenant.service_phase == ServicePhase.NOT_INVITED:
        return _unavailable(request)
    if request.method == "POST":
        return _submit(request, current)
    _start_if_admin(request)
    progress = guide_progress(tenant=tenant)
    # Viewers may look at any step; admins go through the guide in order.
    if request.membership.can_manage and not step_reachable(progress, current):  # type: ignore[attr-defined]
        messages.info(request, f"Complete {GuideStep(progress.current_step).label} first.")
        return redirect(step_url(progress.current_step))
    return _render_step(request, current, progress)


def _int(value: Any) -> int:
    parsed = parse_int(value)
    return -1 if parsed is None else parsed


def _submit(request: HttpRequest, step: GuideStep) -> HttpResponse:
    try:
        return _save_step(request, step, _int(request.POST.get("version")), {})
    except StepAlreadySaved as exc:
        # A double-click or a resubmitted form: already saved, so carry on as if
        # this submit had saved it (no second audit row, no conflict message).
        if step == GuideStep.CLOSE:
            target = reverse("readiness:service_status")
            return HttpResponseClientRedirect(target) if request.htmx else redirect(target)  # type: ignore[attr-defined]
        return _moved_on(request, step, exc.progress)


def _moved_on(request: HttpRequest, step: GuideStep, progress: GuideProgress) -> HttpResponse:
    """Show the step after ``step``: PRG without JS; with htmx, swap it in and
    push its URL so Back/reload keep the admin where they are."""
    following = GUIDE_STEPS[min(step_index(step) + 1, len(GUIDE_STEPS) - 1)]
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect(step_url(following))
    return push_url(_render_step(request, following, progress), step_url(following))


def _save_step(request: HttpRequest, step: GuideStep, expected: int, extra: dict[str, Any]) -> HttpResponse:
    from permissions.exceptions import (
        PermissionsError,
        ReauthenticationRequired,
        ReducedAccessNeedsConfirmation,
        StaleEdit,
    )

    tenant = request.tenant  # type: ignore[attr-defined]
    user = request.user
    try:
        if step == GuideStep.PERMISSIONS:
            investigate = request.POST.get("investigate") == "on"
            respond = request.POST.get("respond") == "on"
            extra["choice"] = {"investigate": investigate, "respond": respond}
            restoring = request.POST.get("restore") == "1"
            progress = guide_permissions_submit(
                tenant=tenant,
                acting_user=user,  # type: ignore[arg-type]
                investigate=investigate,
                respond=respond,
                expected_version=expected,
                permissions_version=_int(request.POST.get("permissions_version")),
                confirm_skip=request.POST.get("confirm_skip") == "1",
                recently_authenticated=recently_authenticated(request),
                restore_access=restoring,
            )
            extra["restoring"] = restoring
        elif step == GuideStep.CLOSE:
            was_finished = guide_progress(tenant=tenant).is_finished
            guide_finish(tenant=tenant, acting_user=user, expected_version=expected)  # type: ignore[arg-type]
            messages.success(
                request,
                "You've closed the Get started guide. Your settings are saved; your readiness assessment is below."
                if was_finished
                else "You've finished the Get started guide. Your readiness assessment is below; "
                "it can take up to 24 hours to get the latest status of your security settings.",
            )
            target = reverse("readiness:service_status")
            return HttpResponseClientRedirect(target) if request.htmx else redirect(target)  # type: ignore[attr-defined]
        else:
            progress = guide_step_complete(
                tenant=tenant,
                acting_user=user,  # type: ignore[arg-type]
                step=step,
                expected_version=expected,
            )
    except (SkipNeedsConfirmation, ReducedAccessNeedsConfirmation) as exc:
        extra["confirm_skip"] = exc.message
    except ReauthenticationRequired as exc:
        messages.info(request, exc.message)
        back = f"{step_url(step)}?{urlencode({'investigate': int(extra['choice']['investigate']), 'respond': 1})}"
        target = f"{reverse('confirm_password')}?{urlencode({'next': back})}"
        return HttpResponseClientRedirect(target) if request.htmx else redirect(target)  # type: ignore[attr-defined]
    except StaleEdit as exc:
        extra["conflict"] = exc.message
        extra.pop("choice", None)  # show the current settings, not the stale form
    except StepAlreadySaved:
        raise
    except GuideConflict as exc:
        extra["conflict"] = exc.message
        extra.pop("choice", None)
    except GuideNotAvailable:
        return _unavailable(request)
    except (PermissionsError, OnboardingError) as exc:
        extra["error"] = exc.message
    else:
        if extra.get("restoring"):
            messages.success(request, "Service provider access restored. Our experts can sign in to your tenant again.")
        return _moved_on(request, step, progress)
    return _render_step(request, step, guide_progress(tenant=tenant), **extra)


def _access_context(request: HttpRequest) -> dict[str, Any]:
    """The experts' access as the Permissions page sees it: levels and health
    from one snapshot (the permissions app's two queries)."""
    from permissions.selectors import access_health, access_levels_state, access_snapshot

    tenant = request.tenant  # type: ignore[attr-defined]
    snapshot = access_snapshot(tenant=tenant)
    return {
        "access": access_levels_state(tenant=tenant, snapshot=snapshot),
        "access_health": access_health(tenant=tenant, snapshot=snapshot),
    }


def _permissions_context(request: HttpRequest, choice: dict[str, bool] | None) -> dict[str, Any]:
    ctx = _access_context(request)
    state = ctx["access"]
    can_manage = request.membership.can_manage  # type: ignore[attr-defined]
    if choice is None and can_manage and request.method == "GET" and "respond" in request.GET:
        # Back from "Confirm your password": keep what the admin had chosen.
        choice = {"investigate": request.GET.get("investigate") == "1", "respond": request.GET.get("respond") == "1"}
        if recently_authenticated(request):
            action = RESTORE_LABEL if state.removed else "Next"
            messages.info(request, f"Password confirmed. Select {action} to save your choice.")
    if choice is None:
        if not can_manage or state.removed:
            # Read-only viewers, and anyone looking at removed access, see what
            # is actually granted: a pre-ticked default would look like access
            # the experts don't have.
            choice = {"investigate": state.investigate, "respond": state.respond}
        else:
            # Nothing granted yet: Investigate is the default level.
            choice = {"investigate": state.investigate or not state.respond, "respond": state.respond}
    ctx["choice"] = choice
    return ctx


def _contacts_context(request: HttpRequest, step: GuideStep) -> dict[str, Any]:
    from contacts.models import NOTIFICATION_TYPE_HELP, NotificationType
    from contacts.selectors import directory_search

    notification_type = CONTACT_STEPS[step]
    q = (request.GET.get("q") or "").strip()[:200]
    results = directory_search(tenant=request.tenant, query=q) if q else []  # type: ignore[attr-defined]
    return {
        "notification_type": notification_type,
        "notification_type_label": NotificationType(notification_type).label,
        "notification_type_help": NOTIFICATION_TYPE_HELP[notification_type],
        "contacts": guide_contacts(tenant=request.tenant, notification_type=notification_type),  # type: ignore[attr-defined]
        "q": q,
        "results": results,
        # Back from contacts:add (a full-page POST) at the list that just grew:
        # keyboard users go on from there (Tab reaches the search, then Next)
        # instead of starting again at the top of the page.
        "next": f"{step_url(step)}#{CONTACTS_ANCHOR}",
    }


def _render_step(request: HttpRequest, step: GuideStep, progress: GuideProgress, **extra: Any) -> HttpResponse:
    membership: Membership = request.membership  # type: ignore[attr-defined]
    steps = guide_step_states(progress=progress, viewing=step, browse_all=not membership.can_manage)
    idx = step_index(step)
    ctx: dict[str, Any] = {
        "nav": "get_started",
        "step": step,
        "steps": steps,
        "step_number": idx + 1,
        "step_total": len(GUIDE_STEPS),
        "progress": progress,
        "previous_url": step_url(GUIDE_STEPS[idx - 1]) if idx > 0 else None,
        "following_url": step_url(GUIDE_STEPS[idx + 1]) if idx + 1 < len(GUIDE_STEPS) else None,
        "following_reachable": idx + 1 < len(GUIDE_STEPS) and steps[idx + 1].reachable,
        "read_only": not membership.can_manage,
        "read_only_sentence": READ_ONLY_SENTENCE,
        "step_url": step_url(step),
        "seed_skip_warning": SkipNeedsConfirmation.message,
        "restore_label": RESTORE_LABEL,
    }
    if step == GuideStep.PERMISSIONS:
        ctx.update(_permissions_context(request, extra.pop("choice", None)))
    elif step in CONTACT_STEPS:
        ctx.update(_contacts_context(request, step))
    elif step == GuideStep.CLOSE:
        from contacts.models import NotificationType
        from contacts.selectors import contacts_by_type

        grouped = contacts_by_type(tenant=request.tenant)  # type: ignore[attr-defined]
        ctx.update(_access_context(request))
        ctx.update(
            {
                "incident_contacts": grouped[NotificationType.INCIDENT.value],
                "service_review_contacts": grouped[NotificationType.SERVICE_REVIEW.value],
            }
        )
    ctx.update(extra)
    htmx = request.htmx  # type: ignore[attr-defined]
    template = "onboarding/guide.html"
    if htmx and not htmx.history_restore_request:
        template = "onboarding/_guide_swap.html"
    response = render(request, template, ctx)
    # The same URL answers with a fragment or a full page; caches must tell them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- The welcome link ---------------------------------------------------------------


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Where the welcome email's link lands.

    Expired or tampered links get an explanation (no sign-in needed: the page
    names no organization). A valid link needs a signed-in member of the
    invited tenant; anyone else gets a 404 that names nothing.
    """
    try:
        found = invitation_for_token(token=token)
    except LinkError as exc:
        return _link_problem(request, exc)
    if not request.user.is_authenticated:
        # Say why they're asked to sign in (naming no organization: the link may have been forwarded).
        messages.info(request, "Sign in to open the Defender Experts Get started guide from your welcome email.")
        return redirect_to_login(request.get_full_path())
    membership = (
        Membership.objects.select_related("tenant").filter(user_id=request.user.pk, tenant_id=found.tenant_id).first()
    )
    if membership is None:
        return render(request, "onboarding/link_refused.html", status=404)
    if found.revoked_at is not None:
        return _link_problem(request, LinkReplaced())
    if found.expires_at <= timezone.now():
        return _link_problem(request, LinkExpired())
    # Open the guide for the tenant the link is for, even if the user was
    # looking at another of their organizations.
    request.session[SESSION_TENANT_KEY] = found.tenant_id
    try:
        invitation_open(invitation=found, acting_user=request.user, can_manage=membership.can_manage)  # type: ignore[arg-type]
    except GuideNotAvailable:
        pass
    return redirect("onboarding:get_started")


def _link_problem(request: HttpRequest, exc: LinkError) -> HttpResponse:
    status = 410 if exc.reason in {"expired", "replaced"} else 404
    return render(
        request,
        "onboarding/link_problem.html",
        {"reason": exc.reason, "message": exc.message, "link_lifetime": link_lifetime_text()},
        status=status,
    )


# --- Provider: onboarding console ---------------------------------------------------


def _require_sdm(request: HttpRequest) -> None:
    staff = request.provider_staff  # type: ignore[attr-defined]
    if staff is None or not staff.is_service_delivery_manager:
        raise PermissionDenied("Only a service delivery manager can send the welcome email.")


@provider_view
def console(request: HttpRequest) -> HttpResponse:
    """Every tenant of the provider: phase, invitation, guide progress, readiness.

    Queries: the page's tenants with their progress and latest invitation (1),
    the paginator's count (1) and the readiness summaries (fixed, readiness
    app), whatever the number of tenants.
    """
    organization = request.provider_staff.organization  # type: ignore[attr-defined]
    phase = request.GET.get("phase") or ""
    q = (request.GET.get("q") or "").strip()[:100]
    page = Paginator(console_tenants(organization=organization, phase=phase, q=q), CONSOLE_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    tenants = list(page.object_list)
    readiness = readiness_for(tenant_ids=[t.pk for t in tenants]) if tenants else {}
    rows = []
    for t in tenants:
        progress = getattr(t, "guide_progress", None)
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
    query = urlencode({k: v for k, v in {"phase": phase, "q": q}.items() if v})
    return render(
        request,
        "onboarding/console.html",
        {
            "nav": "provider_console",
            "page": page,
            "rows": rows,
            "phase": phase,
            "q": q,
            "phases": ServicePhase.choices,
            "query": query,
            "now": timezone.now(),
            "step_total": len(GUIDE_STEPS),
            "is_sdm": request.provider_staff.is_service_delivery_manager,  # type: ignore[attr-defined]
        },
    )


@provider_view
def provider_tenant(request: HttpRequest, tenant_id: int) -> HttpResponse:
    """One tenant's onboarding: who gets the welcome email, every link sent, and the guide."""
    tenant = provider_tenant_or_404(request, tenant_id)
    progress = guide_progress(tenant=tenant)
    return render(
        request,
        "onboarding/provider_tenant.html",
        {
            "nav": "provider_console",
            "tenant": tenant,
            "recipients": tenant_admin_emails(tenant),
            "invitations": list(invitations_for_tenant(tenant=tenant)),
            "progress": progress,
            "steps": guide_step_states(progress=progress, viewing=GuideStep(progress.current_step))
            if not progress.is_finished
            else guide_step_states(progress=progress, viewing=GuideStep.CLOSE),
            "can_invite": tenant.service_phase == ServicePhase.NOT_INVITED,
            "can_resend": tenant.service_phase in RESENDABLE_PHASES,
            "is_sdm": request.provider_staff.is_service_delivery_manager,  # type: ignore[attr-defined]
            "link_lifetime": link_lifetime_text(),
        },
    )


def _send(request: HttpRequest, tenant_id: int, *, resend: bool) -> HttpResponse:
    _require_sdm(request)
    tenant = provider_tenant_or_404(request, tenant_id)
    try:
        sent: Invitation = invitation_send(
            tenant=tenant,
            acting_user=request.user,  # type: ignore[arg-type]
            resend=resend,
            # The newest link the page showed: a second click doesn't send (and kill) another one.
            expected_latest_id=_int(request.POST["latest"]) if request.POST.get("latest") else None,
        )
    except InvitationError as exc:
        messages.error(request, exc.message)
        return redirect("onboarding_provider:tenant", tenant_id=tenant.pk)
    messages.success(
        request,
        f"{'Resent' if resend else 'Sent'} the welcome email to {', '.join(sent.recipients)}."
        + (" Earlier links no longer work." if resend else f" {tenant.name} is now Invited."),
    )
    if request.POST.get("return") == "console":
        return redirect("onboarding_provider:console")
    return redirect("onboarding_provider:tenant", tenant_id=tenant.pk)


@provider_view
@require_POST
def invite(request: HttpRequest, tenant_id: int) -> HttpResponse:
    return _send(request, tenant_id, resend=False)


@provider_view
@require_POST
def resend(request: HttpRequest, tenant_id: int) -> HttpResponse:
    return _send(request, tenant_id, resend=True)
