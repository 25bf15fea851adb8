"""The one place that scopes requests: tenant_page, provider_page, get_tenant_object_or_404."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.test import RequestFactory

from environment.models import Device
from tenancy.access import get_tenant_object_or_404, provider_page, tenant_page
from tenancy.middleware import SESSION_TENANT_KEY, TenantMiddleware
from tenancy.models import Membership, TenantRole
from tests import factories

pytestmark = pytest.mark.django_db


def _request(user, method="get", tenant_id=None):
    request = getattr(RequestFactory(), method)("/x/")
    request.user = user
    request.session = SessionStore()
    if tenant_id is not None:
        request.session[SESSION_TENANT_KEY] = tenant_id
    TenantMiddleware(lambda r: HttpResponse())(request)
    return request


@tenant_page
def member_page(request):
    return HttpResponse(request.tenant.name)


@tenant_page(manage=True)
def admin_write(request):
    return HttpResponse("changed")


@provider_page
def staff_page(request):
    return HttpResponse("staff")


def test_anonymous_users_are_sent_to_sign_in():
    response = member_page(_request(AnonymousUser()))
    assert response.status_code == 302 and "/sign-in/?next=/x/" in response["Location"]


def test_members_see_their_own_tenant(admin, contoso):
    assert member_page(_request(admin)).content == b"Contoso"


@pytest.mark.parametrize("role", [TenantRole.SECURITY_OPERATOR, TenantRole.SECURITY_READER])
def test_view_only_roles_get_403_on_writes(contoso, role):
    user = factories.member(contoso, role)
    assert member_page(_request(user)).status_code == 200
    with pytest.raises(PermissionDenied):
        admin_write(_request(user, "post"))


@pytest.mark.parametrize("role", [TenantRole.GLOBAL_ADMINISTRATOR, TenantRole.SECURITY_ADMINISTRATOR])
def test_managing_roles_may_write(contoso, role):
    user = factories.member(contoso, role)
    assert admin_write(_request(user, "post")).content == b"changed"


def test_another_tenants_objects_are_404(admin, contoso, fabrikam, outsider):
    theirs = factories.devices(fabrikam, 1)[0]
    ours = factories.devices(contoso, 1)[0]
    request = _request(admin)
    assert get_tenant_object_or_404(request, Device, pk=ours.pk) == ours
    with pytest.raises(Http404):
        get_tenant_object_or_404(request, Device, pk=theirs.pk)
    with pytest.raises(Http404):
        get_tenant_object_or_404(request, Device, pk="not-a-number")
    with pytest.raises(Http404):
        get_tenant_object_or_404(_request(outsider), Device.objects.all(), pk=ours.pk)


def test_session_cannot_select_a_tenant_the_user_is_not_a_member_of(admin, contoso, fabrikam):
    request = _request(admin, tenant_id=fabrikam.pk)
    assert request.tenant == contoso


def test_a_user_with_two_memberships_switches_between_them(admin, contoso, fabrikam):
    Membership.objects.create(user=admin, tenant=fabrikam, role=TenantRole.SECURITY_READER)
    assert _request(admin).tenant == contoso
    request = _request(admin, tenant_id=fabrikam.pk)
    assert request.tenant == fabrikam and not request.membership.can_manage


def test_provider_staff_never_act_as_tenant_members(sdm):
    response = member_page(_request(sdm))
    assert response.status_code == 302 and response["Location"].endswith("/provider/onboarding/")
    assert staff_page(_request(sdm)).content == b"staff"


def test_members_cannot_reach_the_provider_area(admin):
    with pytest.raises(PermissionDenied):
        staff_page(_request(admin))


def test_a_user_without_membership_is_refused(db):
    with pytest.raises(PermissionDenied):
        member_page(_request(factories.user()))


def test_switching_organisation_over_http(login, admin, contoso, fabrikam):
    from django.urls import reverse

    client = login(admin)
    page = client.get(reverse("onboarding:index"), follow=True)
    assert b'id="switch-tenant"' not in page.content  # one membership: no switcher
    Membership.objects.create(user=admin, tenant=fabrikam, role=TenantRole.SECURITY_READER)
    page = client.get(reverse("onboarding:index"), follow=True)
    assert b'id="switch-tenant"' in page.content
    client.post(reverse("switch_tenant"), {"tenant": fabrikam.pk})
    assert client.session[SESSION_TENANT_KEY] == fabrikam.pk
    page = client.get(reverse("onboarding:index"), follow=True)
    assert b'data-testid="tenant-name">Fabrikam<' in page.content


def test_switching_to_a_foreign_organisation_is_refused(login, admin, contoso, fabrikam):
    from django.urls import reverse

    client = login(admin)
    response = client.post(reverse("switch_tenant"), {"tenant": fabrikam.pk}, follow=True)
    assert SESSION_TENANT_KEY not in client.session
    assert b"not a member of that organisation" in response.content
    response = client.post(reverse("switch_tenant"), {"tenant": "abc"}, follow=True)
    assert response.status_code == 200
