"""Settings > Defender Experts, the Get started guide, the welcome link and
the provider's onboarding console. Views only translate HTTP: the rules live
in ``onboarding.services``, each page's state in ``onboarding.selectors``,
and whatever a service refuses with becomes its response in ``core``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import push_url

from contacts.forms import AddContactForm
from contacts.selectors import PickerState
from contacts.services import contact_add, contact_added_message
from core.errors import ApplicationError, Conflict, NeedsConfirmation
from core.pages import is_htmx, on_error, redirect_page, render_page, require_valid
from exclusions.views import DEVICE_GROUPS, manage_context
from exclusions.views import KINDS as EXCLUSION_TABS
from onboarding.exceptions import (
    GuideNotAvailable,
    LinkError,
    LinkExpired,
    LinkReplaced,
    SkipNeedsConfirmation,
)
from onboarding.links import link_lifetime_text
from onboarding.models import CONTACT_STEPS, FORMER_CLOSE_SLUG, GuideProgress, GuideStep, required_after
from onboarding.selectors import (
    console_page,
    guide_overview,
    guide_progress,
    guide_step_page,
    invitation_for_token,
    provider_tenant_page,
    settings_page,
)
from onboarding.services import (
    guide_exclusions_finish,
    guide_finish,
    guide_permissions_submit,
    guide_start,
    guide_step_complete,
    invitation_open,
    invitation_send,
)
from permissions.exceptions import LEAST_PRIVILEGE_NOTE
from tenancy.access import ProviderRequest, TenantRequest, provider_page, provider_tenant_or_404, tenant_page
from tenancy.bounds import parse_int
from tenancy.middleware import SESSION_TENANT_KEY
from tenancy.models import ServicePhase, Tenant, User
from tenancy.reauth import recently_authenticated
from tenancy.selectors import membership_in

READ_ONLY_SENTENCE = (
    "Only a Global Administrator or a Security Administrator can complete this guide. "
    "You can view the steps and the current settings."
)
SDM_SEND_MESSAGE = "Only a service delivery manager can send the welcome email."
# The Permissions step's button while service provider access is removed: going
# on restores it, so the button says so (a plain "Next" never undoes a removal).
RESTORE_LABEL = "Restore access and continue"
CONTACTS_ANCHOR = "added-heading"
# Marks a contact step's POST as the picker's Add (the step's Next posts to the same URL).
ADD_CONTACT_FIELD = "add_contact"
GUIDE_TEMPLATE = "onboarding/guide.html"
# What htmx swaps in for a step: the page's title, then the guide.
GUIDE_SWAP = "onboarding/_guide_swap.html"


def step_url(step: GuideStep | str) -> str:
    return reverse("onboarding:step", kwargs={"step": GuideStep(step).value})


# --- Settings > Defender Experts ----------------------------------------------------


@tenant_page
def index(request: TenantRequest) -> HttpResponse:
    context = {"nav": "defender_experts", "can_manage": request.membership.can_manage}
    return render_page(request, "onboarding/index.html", {**context, **settings_page(tenant=request.tenant)})


def _unavailable(request: HttpRequest, status: int = 200) -> HttpResponse:
    return render_page(
        request,
        "onboarding/unavailable.html",
        {"nav": "get_started", "message": GuideNotAvailable.message},
        status=status,
    )


def _start_if_admin(request: TenantRequest) -> None:
    """An admin opening the guide moves Invited -> Setting up (once); only then
    does this write, so later visits cost no extra queries."""
    if request.membership.can_manage and request.tenant.service_phase == ServicePhase.INVITED:
        guide_start(tenant=request.tenant, acting_user=request.user)


@tenant_page
@require_GET
def overview(request: TenantRequest) -> HttpResponse:
    """The Get started page: the guide's overview, before Permissions (the seed's first screenshot)."""
    if request.tenant.service_phase == ServicePhase.NOT_INVITED:
        return _unavailable(request)
    _start_if_admin(request)
    context = {
        "nav": "get_started",
        "can_manage": request.membership.can_manage,
        "read_only_sentence": READ_ONLY_SENTENCE,
        **guide_overview(tenant=request.tenant),
    }
    return render_page(request, "onboarding/overview.html", context)


@tenant_page
def get_started(request: TenantRequest) -> HttpResponse:
    """The guide's entry (sidebar, landing page): resume at the tenant's current step."""
    if request.tenant.service_phase == ServicePhase.NOT_INVITED:
        return _unavailable(request)
    _start_if_admin(request)
    progress = guide_progress(tenant=request.tenant)
    # A finished guide reopens at the beginning to review (never reset).
    target = GuideStep.PERMISSIONS if progress.is_finished else GuideStep(progress.current_step)
    return redirect(step_url(target))


@tenant_page(manage="writes")
@require_http_methods(["GET", "POST"])
def guide_step(request: TenantRequest, step: str) -> HttpResponse:
    if step == FORMER_CLOSE_SLUG:
        # Close used to be a step of its own; its old links now land on Next steps, which carries Close.
        return redirect(step_url(GuideStep.NEXT_STEPS))
    try:
        current = GuideStep(step)
    except ValueError:
        raise Http404 from None
    if request.tenant.service_phase == ServicePhase.NOT_INVITED:
        return _unavailable(request)
    if request.method == "POST" and current in CONTACT_STEPS and ADD_CONTACT_FIELD in request.POST:
        return _contact_add(request, current)
    if request.method == "POST":
        return _submit(request, current)
    _start_if_admin(request)
    progress = guide_progress(tenant=request.tenant)
    # Viewers may look at any step; admins go through the guide in order.
    if request.membership.can_manage and not progress.reaches(current):
        messages.info(request, f"Complete {GuideStep(progress.current_step).label} first.")
        return redirect(step_url(progress.current_step))
    choice = _choice_after_reauth(request)
    return _render_step(request, current, progress, choice=choice, reauthed=choice is not None)


def _int(value: Any) -> int:
    parsed = parse_int(value)
    return -1 if parsed is None else parsed


def _posted_choice(request: TenantRequest) -> dict[str, bool]:
    return {"investigate": request.POST.get("investigate") == "on", "respond": request.POST.get("respond") == "on"}


def _choice_after_reauth(request: TenantRequest) -> dict[str, bool] | None:
    """Back from "Confirm your password" (cancelled, or the prompt lapsed): keep what the admin had chosen."""
    if not (request.membership.can_manage and "respond" in request.GET):
        return None
    return {"investigate": request.GET.get("investigate") == "1", "respond": request.GET.get("respond") == "1"}


def _error_page(request: TenantRequest, step: GuideStep, error: ApplicationError) -> HttpResponse:
    """The step again after a refusal: a conflict shows the current state, anything else the admin's own choice."""
    if isinstance(error, GuideNotAvailable):
        return _unavailable(request, error.status)
    progress = guide_progress(tenant=request.tenant)
    if isinstance(error, Conflict):
        return _render_step(request, step, progress, conflict=error.message)
    choice = _posted_choice(request) if step == GuideStep.PERMISSIONS else None
    if isinstance(error, NeedsConfirmation):
        return _render_step(request, step, progress, choice=choice, confirm_skip=error.message)
    return _render_step(request, step, progress, choice=choice, error=error.message)


def _submit(request: TenantRequest, step: GuideStep) -> HttpResponse:
    expected = _int(request.POST.get("version"))
    on_error(request, lambda error: _error_page(request, step, error), reauth_next=lambda: _reauth_back(request, step))
    if step == GuideStep.NEXT_STEPS:
        was_finished = guide_progress(tenant=request.tenant).is_finished
        guide_finish(tenant=request.tenant, acting_user=request.user, expected_version=expected)
        messages.success(
            request,
            "You've closed the Get started guide. Your settings are saved; your readiness assessment is below."
            if was_finished
            else "You've finished the Get started guide. Your readiness assessment is below; "
            "it can take up to 24 hours to get the latest status of your security settings.",
        )
        return redirect_page(request, reverse("readiness:service_status"))
    if step == GuideStep.EXCLUSIONS:
        keep = request.POST.get("skip") != "1"
        progress = guide_exclusions_finish(
            tenant=request.tenant,
            acting_user=request.user,
            keep=keep,
            expected_version=expected,
            exclusions_version=_int(request.POST.get("exclusions_version")),
        )
        if not keep:
            messages.info(request, "Skipped: the exclusions added in this step were discarded.")
        return _moved_on(request, step, progress)
    if step != GuideStep.PERMISSIONS:
        progress = guide_step_complete(
            tenant=request.tenant, acting_user=request.user, step=step, expected_version=expected
        )
        return _moved_on(request, step, progress)
    choice = _posted_choice(request)
    restoring = request.POST.get("restore") == "1"
    progress = guide_permissions_submit(
        tenant=request.tenant,
        acting_user=request.user,
        investigate=choice["investigate"],
        respond=choice["respond"],
        expected_version=expected,
        permissions_version=_int(request.POST.get("permissions_version")),
        confirm_skip=request.POST.get("confirm_skip") == "1",
        recently_authenticated=recently_authenticated(request),
        restore_access=restoring,
    )
    if restoring:
        messages.success(request, "Service provider access restored. Our experts can sign in to your tenant again.")
    return _moved_on(request, step, progress)


def _contact_add(request: TenantRequest, step: GuideStep) -> HttpResponse:
    """A contact step's Add, posted to the step itself (so the address stays the
    step's). A refusal shows the step again with everything the admin chose and
    typed, the error next to its field (a 400); success returns to the step's
    list of contacts, with the message."""
    form = AddContactForm(request.POST)
    on_error(
        request,
        lambda error: _render_step(
            request, step, guide_progress(tenant=request.tenant), picker=form.picker(tenant=request.tenant, error=error)
        ),
    )
    require_valid(form)
    user_id, group_id = form.entry_ids()
    contact = contact_add(
        tenant=request.tenant,
        acting_user=request.user,
        notification_type=CONTACT_STEPS[step],
        directory_user_id=user_id,
        directory_group_id=group_id,
        phone=form.cleaned_data["phone"],
    )
    messages.success(request, contact_added_message(contact))
    return redirect(f"{step_url(step)}#{CONTACTS_ANCHOR}")


def _reauth_back(request: TenantRequest, step: GuideStep) -> str:
    """Where a cancelled password prompt returns to: the step, with the admin's choice kept (Respond asked for it)."""
    return f"{step_url(step)}?{urlencode({'investigate': int(_posted_choice(request)['investigate']), 'respond': 1})}"


def _moved_on(request: TenantRequest, step: GuideStep, progress: GuideProgress) -> HttpResponse:
    """Show the step after ``step``: PRG without JS; with htmx, swap it in and
    push its URL so Back/reload keep the admin where they are."""
    following = required_after(step) or step
    if not progress.reaches(following):
        # Exclusions opened from Permissions before its Next: back there to finish it.
        following = GuideStep(progress.current_step)
    if not is_htmx(request):
        return redirect(step_url(following))
    return push_url(_render_step(request, following, progress), step_url(following))


def _render_step(
    request: TenantRequest,
    step: GuideStep,
    progress: GuideProgress,
    *,
    choice: dict[str, bool] | None = None,
    reauthed: bool = False,
    picker: PickerState | None = None,
    **notices: str,
) -> HttpResponse:
    """The step's page (for htmx, the guide alone); ``notices``: ``conflict``, ``error`` or ``confirm_skip``.

    ``reauthed``: the admin is back from the password prompt with ``choice`` still to save."""
    page = guide_step_page(
        tenant=request.tenant,
        step=step,
        progress=progress,
        can_manage=request.membership.can_manage,
        choice=choice,
        query=picker.q if picker is not None else (request.GET.get("q") or "").strip()[:200],
    )
    if reauthed and step == GuideStep.PERMISSIONS and recently_authenticated(request):
        action = RESTORE_LABEL if page["access"].removed else "Next"
        messages.info(request, f"Password confirmed. Select {action} to save your choice.")
    previous_step, following_step = page.pop("previous_step"), page.pop("following_step")
    context: dict[str, Any] = {
        "nav": "get_started",
        **page,
        "previous_url": step_url(previous_step) if previous_step else None,
        "following_url": step_url(following_step) if following_step else None,
        "read_only_sentence": READ_ONLY_SENTENCE,
        "step_url": step_url(step),
        "seed_skip_warning": SkipNeedsConfirmation.message,
        "least_privilege_note": LEAST_PRIVILEGE_NOTE,
        "restore_label": RESTORE_LABEL,
        # Back from contacts:add (a full-page POST) at the list that just grew:
        # keyboard users go on from there (Tab reaches the search, then Next)
        # instead of starting again at the top of the page.
        "next": f"{step_url(step)}#{CONTACTS_ANCHOR}",
        # The step's own Add: a refusal comes back to this step with the admin's input kept.
        "picker": picker,
        "picker_action": step_url(step),
        "picker_action_field": ADD_CONTACT_FIELD,
        **notices,
    }
    if step == GuideStep.EXCLUSIONS:
        tab = request.GET.get("tab") or ""
        tab = tab if tab in EXCLUSION_TABS else DEVICE_GROUPS
        # After an add or a removal the admin comes back to this step, on the tab they were on.
        context.update(manage_context(request, tab=tab, in_guide=True, next_url=f"{step_url(step)}?tab={tab}"))
    return render_page(request, GUIDE_TEMPLATE, context, partial=GUIDE_SWAP)


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
    user = request.user
    if not isinstance(user, User):
        # Say why they're asked to sign in (naming no organization: the link may have been forwarded).
        messages.info(request, "Sign in to open the Defender Experts Get started guide from your welcome email.")
        return redirect_to_login(request.get_full_path())
    membership = membership_in(user=user, tenant_id=found.tenant_id)
    if membership is None:
        return render_page(request, "onboarding/link_refused.html", status=404)
    if found.revoked_at is not None:
        return _link_problem(request, LinkReplaced())
    if found.expires_at <= timezone.now():
        return _link_problem(request, LinkExpired())
    # Open the guide for the tenant the link is for, even if the user was
    # looking at another of their organizations.
    request.session[SESSION_TENANT_KEY] = found.tenant_id
    invitation_open(invitation=found, acting_user=user, can_manage=membership.can_manage)
    return redirect("onboarding:overview")


def _link_problem(request: HttpRequest, exc: LinkError) -> HttpResponse:
    status = 410 if exc.reason in {"expired", "replaced"} else 404
    return render_page(
        request,
        "onboarding/link_problem.html",
        {"reason": exc.reason, "message": exc.message, "link_lifetime": link_lifetime_text()},
        status=status,
    )


# --- Provider: onboarding console ---------------------------------------------------


@provider_page
def console(request: ProviderRequest) -> HttpResponse:
    """Every tenant of the provider: phase, invitation, guide progress, readiness."""
    staff = request.provider_staff
    phase = request.GET.get("phase") or ""
    q = (request.GET.get("q") or "").strip()[:100]
    page = console_page(
        organization=staff.organization,
        phase=phase,
        q=q,
        page_number=request.GET.get("page"),
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    filters = {k: v for k, v in {"phase": phase, "q": q}.items() if v}
    shown = page["page"]
    context = {
        "nav": "provider_console",
        "phase": phase,
        "q": q,
        "query": urlencode(filters),
        "previous_query": urlencode({**filters, **shown.previous_query}) if shown.has_previous else "",
        "next_query": urlencode({**filters, **shown.next_query}) if shown.has_next else "",
        "is_sdm": staff.is_service_delivery_manager,
    }
    return render_page(request, "onboarding/console.html", {**context, **page})


def _tenant_page(request: ProviderRequest, tenant: Tenant, status: int = 200) -> HttpResponse:
    context = {"nav": "provider_console", "is_sdm": request.provider_staff.is_service_delivery_manager}
    return render_page(
        request, "onboarding/provider_tenant.html", {**context, **provider_tenant_page(tenant=tenant)}, status=status
    )


@provider_page
def provider_tenant(request: ProviderRequest, tenant_id: int) -> HttpResponse:
    """One tenant's onboarding: who gets the welcome email, every link sent, and the guide."""
    return _tenant_page(request, provider_tenant_or_404(request, tenant_id))


def _refused(request: ProviderRequest, tenant: Tenant, error: ApplicationError) -> HttpResponse:
    messages.error(request, error.message)
    return _tenant_page(request, tenant, error.status)


def _send(request: ProviderRequest, tenant_id: int, *, resend: bool) -> HttpResponse:
    tenant = provider_tenant_or_404(request, tenant_id)
    on_error(request, lambda error: _refused(request, tenant, error))
    latest = request.POST.get("latest")
    sent = invitation_send(
        tenant=tenant,
        acting_user=request.user,
        resend=resend,
        # The newest link the page showed: a second click doesn't send (and kill) another one.
        expected_latest_id=_int(latest) if latest else None,
    )
    messages.success(
        request,
        f"{'Resent' if resend else 'Sent'} the welcome email to {', '.join(sent.recipients)}."
        + (" Earlier links no longer work." if resend else f" {tenant.name} is now Invited."),
    )
    if request.POST.get("return") == "console":
        return redirect("onboarding_provider:console")
    return redirect("onboarding_provider:tenant", tenant_id=tenant.pk)


@provider_page(sdm=True)
@require_POST
def invite(request: ProviderRequest, tenant_id: int) -> HttpResponse:
    return _send(request, tenant_id, resend=False)


@provider_page(sdm=True)
@require_POST
def resend(request: ProviderRequest, tenant_id: int) -> HttpResponse:
    return _send(request, tenant_id, resend=True)
