"""Who the signed-in user is, asked on every request (TenantMiddleware): one query for a tenant's member.

The membership query joins the provider-staff check and counts the user's memberships for the
organisation switcher, so a plain signed-in page pays session + user + membership and nothing more.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tenancy.models import Membership, ProviderStaff
from tenancy.selectors import request_identity
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_member_is_found_in_one_query_with_their_number_of_memberships(contoso, fabrikam, admin):
    Membership.objects.create(user=admin, tenant=fabrikam, role="global_administrator")
    with CaptureQueriesContext(connection) as captured:
        chosen = request_identity(admin, fabrikam.pk)
    assert len(captured.captured_queries) == 1
    assert chosen.provider_staff is None and chosen.membership is not None
    assert chosen.membership.tenant == fabrikam and chosen.membership.memberships == 2
    # No choice, or a choice that isn't theirs: the first organisation by name.
    assert request_identity(admin, None).membership.tenant == contoso
    assert request_identity(admin, 10**6).membership.tenant == contoso
    assert request_identity(admin, "not a number").membership.tenant == contoso


def test_provider_staff_win_over_a_membership_and_are_found_without_one(contoso, sdm):
    found = request_identity(sdm, None)
    assert found.membership is None and found.provider_staff == ProviderStaff.objects.get(user=sdm)
    Membership.objects.create(user=sdm, tenant=contoso, role="global_administrator")
    with CaptureQueriesContext(connection) as captured:
        found = request_identity(sdm, contoso.pk)
    assert len(captured.captured_queries) == 1
    assert found.membership is None and found.provider_staff is not None
    assert request_identity(factories.user("nobody@example.test"), None).membership is None


def test_a_signed_in_page_pays_three_queries_before_its_own(login, contoso, admin):
    """The middleware's share on a page that renders the shell with the organisation switcher."""
    client = login(admin)
    url = reverse("onboarding:step", args=["next-steps"])
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    tables = [q["sql"].split(" FROM ", 1)[1].split()[0] for q in captured.captured_queries[:3]]
    assert tables == ['"django_session"', '"tenancy_user"', '"tenancy_membership"']
    assert not any('FROM "tenancy_providerstaff"' in q["sql"] for q in captured.captured_queries)


def test_the_switcher_lists_every_organisation_of_a_member_of_several(login, contoso, fabrikam, admin):
    Membership.objects.create(user=admin, tenant=fabrikam, role="global_administrator")
    body = login(admin).get(reverse("onboarding:step", args=["next-steps"])).content.decode()
    assert 'id="switch-tenant"' in body and ">Fabrikam</option>" in body and ">Contoso</option>" in body
