"""Operators manage organisations, members and accounts here, through tenancy.services.

Each save calls the service that validates the change and audits it in the
tenant's log in the same transaction; membership changes sign the member's
sessions out. Provider organisations and staff are read-only.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from tenancy import services
from tenancy.admin_base import OperatorAdmin, ReadOnlyAdmin, ReadOnlyInline
from tenancy.models import Membership, ProviderOrganization, ProviderStaff, Tenant, User

# The portal has no use for permission groups: only superusers reach the admin.
admin.site.unregister(Group)


def _actor(request: HttpRequest) -> User:
    return cast(User, request.user)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "display_name", "is_active", "is_superuser"]
    list_filter = ["is_active", "is_superuser"]
    search_fields = ["email", "display_name"]
    fieldsets = (
        (None, {"fields": ("email", "password", "display_name")}),
        ("Status", {"fields": ("is_active", "is_superuser", "last_login", "date_joined")}),
    )
    readonly_fields = ["last_login", "date_joined"]
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "display_name", "password1", "password2")}),)
    filter_horizontal = ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Accounts are deactivated, never deleted: the audit trail points at them.
        return False

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not change:
            created = services.user_create(
                acting_user=_actor(request),
                email=obj.email,
                display_name=obj.display_name,
                password=form.cleaned_data.get("password1"),
            )
            obj.pk = created.pk
            return
        changes = {name: form.cleaned_data[name] for name in services.USER_FIELDS if name in form.changed_data}
        services.user_update(user=obj, acting_user=_actor(request), changes=changes)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # Django's view saves the form itself: AuditedPasswordForm routes that
        # save through the service, in one transaction with the audit row.
        token = _password_actor.set(_actor(request))
        try:
            with transaction.atomic():
                return super().user_change_password(request, id, form_url)
        finally:
            _password_actor.reset(token)


# Who is setting a password in UserAdmin.user_change_password (Django builds the form without the request).
_password_actor: ContextVar[User] = ContextVar("password_actor")


class AuditedPasswordForm(AdminPasswordChangeForm):
    def save(self, commit: bool = True) -> User:
        password = self.cleaned_data["password1"] if self.cleaned_data.get("set_usable_password", True) else None
        return services.user_set_password(user=self.user, acting_user=_password_actor.get(), password=password)


UserAdmin.change_password_form = AuditedPasswordForm


class MembershipInline(ReadOnlyInline):
    model = Membership
    fields = ["user", "role", "created_at"]
    readonly_fields = ["user", "role", "created_at"]
    show_change_link = True


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ["name", "primary_domain", "provider"]


@admin.register(Tenant)
class TenantAdmin(OperatorAdmin):
    form = TenantForm
    list_display = ["name", "primary_domain", "service_phase", "provider"]
    search_fields = ["name", "primary_domain"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The phase moves only through onboarding and readiness; a tenant never changes provider.
        fields = ["service_phase", "service_phase_changed_at", "environment_changed_at"]
        return [*fields, "provider"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.tenant_update(
                tenant=obj, acting_user=_actor(request), name=data["name"], primary_domain=data["primary_domain"]
            )
        else:
            created = services.tenant_create(
                acting_user=_actor(request),
                name=data["name"],
                primary_domain=data["primary_domain"],
                provider=data["provider"],
            )
            obj.pk = created.pk


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "tenant", "role"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        user = data.get("user")
        if self.instance.pk is None and user is not None and ProviderStaff.objects.filter(user=user).exists():
            self.add_error("user", "Provider staff never act as members of a tenant.")
        return data


@admin.register(Membership)
class MembershipAdmin(OperatorAdmin):
    """Adding, changing the role of and removing members: each signs the member out at once."""

    form = MembershipForm
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    list_select_related = ["user", "tenant"]
    search_fields = ["user__email", "tenant__name"]
    raw_id_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), *(["user"] if obj is not None else [])]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if change:
            services.membership_set_role(membership=obj, acting_user=_actor(request), role=obj.role)
            return
        created = services.membership_add(tenant=obj.tenant, acting_user=_actor(request), user=obj.user, role=obj.role)
        obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_remove(membership=obj, acting_user=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for membership in queryset:
            services.membership_remove(membership=membership, acting_user=_actor(request))


@admin.register(ProviderOrganization)
class ProviderOrganizationAdmin(ReadOnlyAdmin):
    list_display = ["name", "domain"]


@admin.register(ProviderStaff)
class ProviderStaffAdmin(ReadOnlyAdmin):
    list_display = ["user", "organization", "role"]
    list_select_related = ["user", "organization"]
