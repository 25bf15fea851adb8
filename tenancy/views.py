from __future__ import annotations

from typing import Any, cast

from allauth.mfa.base.views import IndexView as MFAIndexView
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.views import GenerateRecoveryCodesView as BaseGenerateRecoveryCodesView
from allauth.mfa.totp.views import ActivateTOTPView as BaseActivateTOTPView
from allauth.usersessions.views import ListUserSessionsView
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from core.replay import pop_post
from tenancy import services
from tenancy.access import TenantRequest, get_tenant_object_or_404, record_refused_expert_action, tenant_page
from tenancy.forms import ConfirmPasswordForm, SwitchTenantForm
from tenancy.mfa import mfa_required, passkey_request_options
from tenancy.middleware import SESSION_TENANT_KEY
from tenancy.models import Membership, User
from tenancy.reauth import mark_authenticated
from tenancy.selectors import member_session_counts, memberships_for_user


def home(request: HttpRequest) -> HttpResponse:
    """Signed-in members land on Settings > Defender Experts; staff on their console."""
    if not request.user.is_authenticated:
        return redirect("login")
    if getattr(request, "provider_staff", None) is not None:
        return redirect("onboarding_provider:console")
    return redirect("onboarding:index")


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


@login_required
@require_POST
def switch_tenant(request: HttpRequest) -> HttpResponse:
    form = SwitchTenantForm(request.POST)
    user = request.user
    if (
        isinstance(user, User)
        and form.is_valid()
        and memberships_for_user(user).filter(tenant_id=form.cleaned_data["tenant"]).exists()
    ):
        request.session[SESSION_TENANT_KEY] = form.cleaned_data["tenant"]
        return redirect("home")
    messages.error(request, "You're not a member of that organisation.")
    return redirect("home")


@login_required
def confirm_password(request: HttpRequest) -> HttpResponse:
    """Ask for the password again before a sensitive change."""
    next_url = _safe_next(request, "/")
    form = ConfirmPasswordForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        mark_authenticated(request)
        replayed = _replay_pending_post(request)
        return replayed if replayed is not None else HttpResponseRedirect(next_url)
    # A fresh passkey challenge with every rendering (the last one is spent, or never used).
    passkey = passkey_request_options(request.user) if form.has_passkey else None
    return render(
        request, "registration/confirm_password.html", {"form": form, "next": next_url, "passkey_data": passkey}
    )


def _replay_pending_post(request: HttpRequest) -> HttpResponse | None:
    """Complete the change that asked for the password: its view runs now with the fields it was posted with.

    The view re-checks everything (membership, role, the version it was made against), exactly as if the user had
    submitted it again; the CSRF check was passed by that first submission and by this prompt.
    """
    pending = pop_post(request)
    if pending is None:
        return None
    path, fields = pending
    try:
        match = resolve(path)
    except Resolver404:
        return None
    # Immutable, as Django's own request.POST.
    request.POST = QueryDict(urlencode([(key, value) for key, values in fields for value in values]))
    request.path = request.path_info = path
    response: HttpResponse = match.func(request, *match.args, **match.kwargs)
    return response


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else "You don't have permission to do that."
    record_refused_expert_action(request, message)
    return render(request, "errors/403.html", {"message": message}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/404.html", status=404)


# --- Multi-factor sign-in and signed-in sessions ------------------------------------------


class MultiFactorView(MFAIndexView):
    """Multi-factor sign-in: the guided enrolment, and (for admins) the organisation's rule."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = super().get_context_data(**kwargs)
        membership = getattr(self.request, "membership", None)
        ctx["mfa_required"] = mfa_required(self.request)
        ctx["can_set_policy"] = membership is not None and membership.can_manage
        ctx["nav"] = "account"
        return ctx


class SignedInSessionsView(ListUserSessionsView):
    """Signed-in sessions: the user's own (device, IP, sign-in, last activity), and for
    admins, their members', each of whom they can sign out everywhere."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = super().get_context_data(**kwargs)
        membership = getattr(self.request, "membership", None)
        if membership is not None and membership.can_manage:
            ctx["members"] = member_session_counts(tenant=membership.tenant)
        ctx["nav"] = "account"
        return ctx

    def form_valid(self, form: Any) -> HttpResponse:
        # allauth's own form ends the sessions unaudited; the service ends them and records it.
        ended = services.own_other_sessions_end(
            acting_user=cast(User, self.request.user),
            keep_session_key=self.request.session.session_key,
        )
        messages.info(self.request, f"Signed out of {ended} other session{'s' if ended != 1 else ''}.")
        return redirect("usersessions_list")


class ActivateTOTPView(BaseActivateTOTPView):
    """allauth's enrolment of an authenticator app, audited in the same transaction (allauth announces it after)."""

    def form_valid(self, form: Any) -> HttpResponse:
        response: HttpResponse = super().form_valid(form)
        user = cast(User, self.request.user)
        app = Authenticator.objects.get(user_id=user.pk, type=Authenticator.Type.TOTP)
        services.account_factor_change_record(acting_user=user, authenticator=app, change="added")
        return response


class GenerateRecoveryCodesView(BaseGenerateRecoveryCodesView):
    """New recovery codes (the old ones stop working), audited in the same transaction."""

    def form_valid(self, form: Any) -> HttpResponse:
        response: HttpResponse = super().form_valid(form)
        user = cast(User, self.request.user)
        codes = Authenticator.objects.get(user_id=user.pk, type=Authenticator.Type.RECOVERY_CODES)
        services.account_factor_change_record(acting_user=user, authenticator=codes, change="reset")
        return response


activate_totp = ActivateTOTPView.as_view()
generate_recovery_codes = GenerateRecoveryCodesView.as_view()
multi_factor = MultiFactorView.as_view()
signed_in_sessions = SignedInSessionsView.as_view()


@tenant_page(manage=True)
@require_POST
def member_sessions_end(request: TenantRequest, membership_id: int) -> HttpResponse:
    membership = get_tenant_object_or_404(request, Membership.objects.select_related("user"), pk=membership_id)
    ended = services.member_sessions_end(tenant=request.tenant, acting_user=request.user, membership=membership)
    messages.success(request, f"Signed {membership.user.email} out of {ended} session{'s' if ended != 1 else ''}.")
    return redirect("usersessions_list")


@tenant_page(manage=True)
@require_POST
def mfa_policy(request: TenantRequest) -> HttpResponse:
    required = request.POST.get("require_mfa_for_admins") == "on"
    services.tenant_set_mfa_requirement(tenant=request.tenant, acting_user=request.user, required=required)
    messages.success(
        request,
        "Administrators must now sign in with a second factor."
        if required
        else "A second factor is now optional for administrators.",
    )
    return redirect("mfa_index")
