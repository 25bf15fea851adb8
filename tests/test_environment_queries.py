"""Each Environment page runs a fixed number of SQL queries, at small and at 10x data.

Every page pays the same 3 queries before its own work: the session, the
user, and the membership (TenantMiddleware), which joins the provider-staff
check and counts the memberships for the organisation switcher in base.html.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from environment.models import AntivirusMode
from tests import factories

pytestmark = pytest.mark.django_db

SHELL = 3


def _environment(tenant, scale: int) -> None:
    dcs = [
        factories.domain_controller(tenant, f"dc{i}.corp.{tenant.primary_domain}", sensor=i % 2 == 0)
        for i in range(2 * scale)
    ]
    for g in range(3 * scale):
        group = factories.device_group(tenant, f"Group {g}")
        factories.devices(tenant, 10, group=group, onboarded=g % 2 == 0, prefix=f"g{g}")
        factories.devices(tenant, 5, group=group, av_mode=AntivirusMode.PASSIVE, prefix=f"p{g}")
    users = [factories.directory_user(tenant, domain_controller=dcs[i % len(dcs)]) for i in range(10 * scale)]
    for g in range(3 * scale):
        factories.directory_group(tenant, f"Team {g}", members=users[g::3])
    factories.licence(tenant, "mde_p2", 100 * scale)
    factories.setting(tenant, "mde.tamper_protection", "on")


# Queries of each page after the shell, and why.
PAGES = {
    # device counts (the device tally), identity counts, DCs with identity counts,
    # stored settings, licences, group counts
    "environment:overview": 6,
    # device counts (the tally, which also gives the matching total: no COUNT of the devices),
    # device groups, one keyset page of devices
    "environment:devices": 3,
    # DCs with identity counts, identity counts
    "environment:domain_controllers": 2,
    # users bounded COUNT + keyset page, groups bounded COUNT + keyset page, DCs for the "Add a user" form
    "environment:directory": 5,
    # stored settings
    "environment:settings": 1,
    # device counts, identity counts, licences
    "environment:licences": 3,
}


@pytest.mark.parametrize("scale", [1, 10])
@pytest.mark.parametrize("page", sorted(PAGES))
def test_pages_run_a_fixed_number_of_queries(login, admin, contoso, django_assert_num_queries, page, scale):
    _environment(contoso, scale)
    client = login(admin)
    with django_assert_num_queries(SHELL + PAGES[page]):
        response = client.get(reverse(page))
    assert response.status_code == 200


@pytest.mark.parametrize("scale", [1, 10])
def test_filtered_device_list_adds_only_the_group_lookup(login, admin, contoso, django_assert_num_queries, scale):
    _environment(contoso, scale)
    group = contoso.device_groups.first()
    client = login(admin)
    # + the device group filter's tenant-scoped lookup; the tally answers how many match
    with django_assert_num_queries(SHELL + PAGES["environment:devices"] + 1):
        client.get(reverse("environment:devices"), {"group": group.pk, "av": "passive", "page": 1})
    # + a name search's count, which the tally can't answer (bounded by a LIMIT)
    with django_assert_num_queries(SHELL + PAGES["environment:devices"] + 2):
        client.get(reverse("environment:devices"), {"group": group.pk, "av": "passive", "q": "p", "page": 1})


@pytest.mark.parametrize("scale", [1, 10])
def test_bulk_actions_run_a_fixed_number_of_queries(login, admin, contoso, django_assert_num_queries, scale):
    _environment(contoso, scale)
    client = login(admin)
    # Shell (nothing rendered), then in one transaction: savepoint, state counts, UPDATE devices,
    # UPDATE tenant, INSERT audit, release; then the redirect's message (no query).
    with django_assert_num_queries(SHELL + 6):
        response = client.post(reverse("environment:devices"), {"action": "onboard_matching"})
    assert response.status_code == 302
    with django_assert_num_queries(SHELL + 7):
        response = client.post(reverse("environment:devices"), {"action": "av_matching", "mode": "active"})
    assert response.status_code == 302
