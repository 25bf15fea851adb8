"""The Django admin is for operators and cannot break tenant isolation.

* Only superusers reach it: every admin URL, GET and POST, refuses every role
  of the cast (provider staff included, even with ``is_staff``).
* A tenant foreign key is never editable once the row exists (the CTS-DC03
  finding: a domain controller moved from Contoso to Fabrikam).
* Every admin either is read-only or writes through a service (see
  tests/test_audit_by_construction.py for the audit rows).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, resolve, reverse

from audit.models import AuditEvent
from environment.models import DeviceGroup, DomainController
from tenancy.admin_base import tenant_fields
from tenancy.models import Membership, TenantRole, User
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_user(db: Any) -> User:
    user = User.objects.create_superuser(email="ops@portal.example", password=factories.PASSWORD, display_name="Ops")
    return factories.enrol_totp(user)


@pytest.fixture
def objects(contoso, fabrikam, admin, outsider):
    """At least one row of most registered models, so object URLs resolve for real."""
    dc = factories.domain_controller(contoso, name="CTS-DC03.corp.contoso.example", sensor=False)
    for _ in range(3):
        factories.directory_user(contoso, domain_controller=dc)
    factories.devices(contoso, 2)
    factories.licence(contoso, "mdi", 10)
    group = DeviceGroup.objects.create(tenant=contoso, name="Finance workstations", rank=1)
    return {"dc": dc, "group": group}


def _admin_url_names() -> list[tuple[str, str]]:
    """(name, route) of every URL the admin site serves."""
    found: list[tuple[str, str]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name:
                found.append((p.name, prefix + str(p.pattern)))

    walk(admin.site.get_urls(), "")
    return found


def _reverse_admin(name: str, route: str) -> str | None:
    if "<path:object_id>" in route or "<id>" in route:
        model = next(
            (m for m in admin.site._registry if name.startswith(f"{m._meta.app_label}_{m._meta.model_name}_")), None
        )
        if model is None:
            return None
        pk = model._default_manager.values_list("pk", flat=True).first() or 1
        return reverse(f"admin:{name}", args=[pk])
    if "app_label" in route:
        return reverse(f"admin:{name}", args=["environment"])
    if "content_type_id" in route:
        return None  # view_on_site: a redirect, no admin content
    return reverse(f"admin:{name}")


def _all_admin_urls() -> list[str]:
    urls = [_reverse_admin(name, route) for name, route in _admin_url_names()]
    return sorted({u for u in urls if u})


CAST = ["admin", "secadmin", "operator", "reader", "outsider", "sdm"]


def _call(url: str, method: str, user: Any) -> Any:
    """One request straight to the resolved admin view (the permission check is
    the admin site's own; the full middleware stack is covered below)."""
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    request = getattr(RequestFactory(), method)(url, {"name": "moved", "tenant": "1"})
    request.user = user or AnonymousUser()
    request.session = SessionStore()
    request._dont_enforce_csrf_checks = True
    match = resolve(url)
    return match.func(request, *match.args, **match.kwargs)


def test_every_admin_url_refuses_every_role_of_the_cast(request, objects):
    urls = _all_admin_urls()
    assert len(urls) > 60, "the walk found too few admin URLs"
    users = {name: request.getfixturevalue(name) for name in CAST}
    # is_staff is Django's flag for the admin, and must not be enough.
    for user in users.values():
        user.is_staff = True
    admin_login = reverse("admin:login")
    checked = 0
    for role, user in [("anonymous", None), *users.items()]:
        for url in urls:
            for method in ("get", "post"):
                if url == admin_login:
                    if user is None:
                        response = _call(url, method, user)
                        assert response["Location"].startswith(reverse("login"))
                    else:
                        with pytest.raises(PermissionDenied):
                            _call(url, method, user)
                    continue
                response = _call(url, method, user)
                assert response.status_code == 302, (role, method, url, response.status_code)
                location = response["Location"]
                assert location.startswith(admin_login) or location == reverse("admin:index"), (role, url, location)
                checked += 1
    assert checked == (len(urls) - 1) * 2 * (len(CAST) + 1)
    assert AuditEvent.objects.count() == 0
    assert DomainController.objects.get(pk=objects["dc"].pk).name == "CTS-DC03.corp.contoso.example"


@pytest.mark.parametrize("role", ["anonymous", *CAST])
def test_through_the_whole_stack_a_non_operator_never_sees_the_admin(request, client, objects, role):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    if user is not None:
        user.is_staff = True
        user.save()
        client.force_login(user)
    for url in (reverse("admin:index"), reverse("admin:environment_domaincontroller_change", args=[objects["dc"].pk])):
        response = client.post(url, {"tenant": "1"}, follow=True)
        if user is None:
            assert response.redirect_chain[-1][0].startswith(reverse("login"))
        else:
            assert response.status_code == 403 and b"provider area" in response.content
        assert b"Site administration" not in response.content


def test_an_operator_reaches_every_admin_url_without_a_server_error(client, operator_user, objects):
    client.force_login(operator_user)
    for url in _all_admin_urls():
        response = client.get(url)
        assert response.status_code in (200, 302, 403, 405), (url, response.status_code)


def test_provider_staff_are_sent_to_the_provider_area_not_the_admin(client, sdm):
    sdm.is_staff = True
    sdm.save()
    client.force_login(sdm)
    response = client.get(reverse("admin:index"), follow=True)
    assert response.status_code == 403
    assert b"provider area" in response.content


def test_cts_dc03_cannot_be_moved_to_another_tenant(client, operator_user, objects, contoso, fabrikam):
    """The finding: the change form offered an editable tenant select."""
    client.force_login(operator_user)
    dc: DomainController = objects["dc"]
    url = reverse("admin:environment_domaincontroller_change", args=[dc.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="tenant"' not in page.content
    response = client.post(url, {"name": dc.name, "domain": dc.domain, "tenant": fabrikam.pk})
    assert response.status_code == 403
    dc.refresh_from_db()
    assert dc.tenant_id == contoso.pk
    assert not DomainController.objects.filter(tenant=fabrikam).exists()
    assert not AuditEvent.objects.filter(tenant=fabrikam).exists()


def test_a_device_group_cannot_be_renamed_around_the_audit_trail(client, operator_user, objects, fabrikam):
    client.force_login(operator_user)
    group = objects["group"]
    url = reverse("admin:environment_devicegroup_change", args=[group.pk])
    response = client.post(url, {"name": "Renamed", "rank": group.rank, "tenant": fabrikam.pk})
    assert response.status_code == 403
    group.refresh_from_db()
    assert group.name != "Renamed" and group.tenant.name == "Contoso"


def _changing_request(user: User) -> Any:
    request = RequestFactory().post("/")
    request.user = user
    return request


def test_no_admin_lets_a_tenant_foreign_key_change_after_creation(operator_user):
    """Every registered admin and inline of a model with a tenant key, now and in future."""
    request = _changing_request(operator_user)
    checked = []
    for model, model_admin in admin.site._registry.items():
        names = tenant_fields(model)
        if not names:
            continue
        obj = model()  # an existing row, as far as the admin's hooks can tell
        obj.pk = 1
        if model_admin.has_change_permission(request, obj):
            readonly = set(model_admin.get_readonly_fields(request, obj))
            assert set(names) <= readonly, f"{model._meta.label}: {names} editable on the change form"
        checked.append(model._meta.label)
        for inline in model_admin.get_inline_instances(request, obj):
            inline_names = set(tenant_fields(inline.model)) - {inline.fk_name or ""}
            if inline.has_change_permission(request, obj) or inline.has_add_permission(request, obj):
                assert inline_names <= set(inline.get_readonly_fields(request, obj)), inline
    assert {"environment.DomainController", "environment.DeviceGroup", "tenancy.Membership"} <= set(checked)


def test_nothing_is_deleted_in_the_admin_except_memberships_through_the_service(operator_user):
    request = _changing_request(operator_user)
    deletable = sorted(
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if model_admin.has_delete_permission(request, None)
    )
    assert deletable == ["tenancy.Membership"]


def test_a_membership_never_moves_to_another_tenant(client, operator_user, admin, contoso, fabrikam):
    client.force_login(operator_user)
    membership = Membership.objects.get(user=admin)
    url = reverse("admin:tenancy_membership_change", args=[membership.pk])
    response = client.post(url, {"role": TenantRole.SECURITY_READER, "tenant": fabrikam.pk, "user": admin.pk})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.tenant_id == contoso.pk and membership.role == TenantRole.SECURITY_READER
    event = AuditEvent.objects.get(action="tenant.member_role_changed")
    assert event.tenant_id == contoso.pk and event.actor == operator_user
