from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.replay import pop_post
from tenancy.access import record_refused_expert_action
from tenancy.forms import ConfirmPasswordForm, SignInForm, SwitchTenantForm
from tenancy.middleware import SESSION_TENANT_KEY
from tenancy.reauth import mark_authenticated
from tenancy.selectors import memberships_for_user


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True


sign_in = SignInView.as_view()
sign_out = auth_views.LogoutView.as_view()


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
    if form.is_valid() and memberships_for_user(request.user).filter(tenant_id=form.cleaned_data["tenant"]).exists():  # type: ignore[arg-type]
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
    return render(request, "registration/confirm_password.html", {"form": form, "next": next_url})


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
    data = QueryDict(mutable=True)
    for key, values in fields:
        data.setlist(key, values)
    data._mutable = False
    request.POST = data  # type: ignore[assignment]
    request.path = request.path_info = path
    return match.func(request, *match.args, **match.kwargs)  # type: ignore[no-any-return]


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else "You don't have permission to do that."
    record_refused_expert_action(request, message)
    return render(request, "errors/403.html", {"message": message}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/404.html", status=404)
