"""The Django admin is for the portal's operators (superusers) only.

Provider staff work in the provider area and tenant members in Settings >
Defender Experts: both are refused here, whatever ``is_staff`` says. Signing
in happens on the portal's own sign-in page (with its throttling and second
factor); the admin has no password form of its own.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

OPERATORS_ONLY = "The Django admin is for the portal's operators. Provider staff work in the provider area."


class OperatorAdminSite(admin.AdminSite):
    site_header = "Defender Experts portal: operations"
    site_title = "Defender Experts operations"
    index_title = "Operations"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_superuser)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        if request.user.is_authenticated:
            # Signed in but not an operator: say so instead of offering another sign-in.
            raise PermissionDenied(OPERATORS_ONLY)
        next_url = request.GET.get("next") or request.get_full_path()
        return redirect_to_login(next_url, settings.LOGIN_URL)


def _read_only(model_admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    def no(self: admin.ModelAdmin, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def no_actions(self: admin.ModelAdmin, request: HttpRequest) -> dict[str, Any]:
        # Their own actions (run or toggle a beat task, verify an address, purge axes' records) change rows
        # outside any service and its audit trail, whatever the permissions say.
        return {}

    return type(
        f"ReadOnly{model_admin_class.__name__}",
        (model_admin_class,),
        {"has_add_permission": no, "has_change_permission": no, "has_delete_permission": no, "get_actions": no_actions},
    )


def lock_down_third_party_admins(portal_apps: frozenset[str]) -> None:
    """Re-register every other app's admin read-only (beat schedules, axes' records, allauth's rows).

    Their rows are not tenant data, but a change here would be an unaudited
    change all the same; operators look here and act through the portal.
    """
    from defender_portal.admin_actions import THIRD_PARTY_ADMINS

    site = admin.site
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label in portal_apps:
            continue
        replacement = THIRD_PARTY_ADMINS.get(model._meta.label) or _read_only(type(model_admin))
        site.unregister(model)
        site.register(model, replacement)
