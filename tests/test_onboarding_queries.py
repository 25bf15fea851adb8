"""Each step of the guide runs a fixed number of SQL queries, whatever the data size."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.models import NotificationType
from tests import factories
from tests.test_onboarding_guide import add_contact, finish

pytestmark = pytest.mark.django_db

# Every page: session, user, membership with the provider-staff check and the sidebar's membership
# count joined (middleware, 3) and the guide progress (1) = 4; then per step:
STEP_QUERIES = {
    # the access relationship + the latest grant per level (permissions' snapshot, 2) + the device
    # groups' reach for access health (1)
    "permissions": 7,
    # the contacts of that type with directory rows and welcome email (1) and
    # their team previews (1, prefetch)
    "incident-contact": 6,
    "service-review-contact": 6,
    # the settings summary above Close: access snapshot (2) + all contacts (1) + team previews (1) + device reach (1)
    "next-steps": 9,
}


def grow(tenant, user, n: int) -> None:
    """n more contacts of each type (people and a team), and directory noise."""
    for i in range(n):
        add_contact(tenant, user, NotificationType.INCIDENT, f"Incident Person {i}")
        add_contact(tenant, user, NotificationType.SERVICE_REVIEW, f"Review Person {i}")
    members = [factories.directory_user(tenant, f"Member {tenant.pk}-{len_}") for len_ in range(n)]
    team = factories.directory_group(tenant, f"SOC team {n}", members=members)
    from contacts.services import contact_add

    for notification_type in ("incident", "service_review"):
        contact_add(tenant=tenant, acting_user=user, notification_type=notification_type, directory_group_id=team.pk)


@pytest.mark.parametrize("step", list(STEP_QUERIES))
def test_each_step_runs_a_fixed_number_of_queries(login, contoso, sdm, admin, step, django_assert_num_queries):
    from onboarding.services import invitation_send

    invitation_send(tenant=contoso, acting_user=sdm)
    client = login(admin)
    finish(client, contoso, admin)  # every step reachable, one person of each type
    grow(contoso, admin, 1)  # and a team, so the team-preview query is part of "small" too
    url = reverse("onboarding:step", args=[step])
    client.get(url)
    with django_assert_num_queries(STEP_QUERIES[step]):
        assert client.get(url).status_code == 200
    grow(contoso, admin, 10)
    with django_assert_num_queries(STEP_QUERIES[step]):
        assert client.get(url).status_code == 200


def test_the_contact_search_inside_a_step_adds_one_query(login, contoso, sdm, admin, django_assert_num_queries):
    from onboarding.services import invitation_send

    invitation_send(tenant=contoso, acting_user=sdm)
    client = login(admin)
    finish(client, contoso, admin)
    grow(contoso, admin, 1)
    for i in range(30):
        factories.directory_user(contoso, f"Adele Vance {i}")
    url = reverse("onboarding:step", args=["incident-contact"]) + "?q=adele"
    with django_assert_num_queries(STEP_QUERIES["incident-contact"] + 1):
        response = client.get(url)
    assert response.content.decode().count("Adele Vance") >= 10


def test_landing_page_runs_a_fixed_number_of_queries(login, contoso, sdm, admin, django_assert_num_queries):
    from onboarding.services import invitation_send

    invitation_send(tenant=contoso, acting_user=sdm)
    client = login(admin)
    finish(client, contoso, admin)  # access granted: the snapshot reads its grants too
    client.get(reverse("onboarding:index"))
    # middleware (3, the sidebar's membership count joined) + guide progress (1)
    # + access health: the relationship and the latest grant per level (2)
    with django_assert_num_queries(7):
        client.get(reverse("onboarding:index"))
    grow(contoso, admin, 10)
    with django_assert_num_queries(7):
        client.get(reverse("onboarding:index"))


def rewind(tenant, step: str) -> None:
    """Put the tenant's guide back at ``step`` (earlier steps done, not finished)."""
    from onboarding.models import GUIDE_STEPS, GuideProgress, GuideStep

    done = [s.value for s in GUIDE_STEPS[: GUIDE_STEPS.index(GuideStep(step))]]
    GuideProgress.objects.filter(tenant=tenant).update(current_step=step, completed_steps=done, finished_at=None)


@pytest.mark.parametrize("step", ["incident-contact", "service-review-contact"])
def test_saving_a_step_runs_a_fixed_number_of_queries(login, contoso, sdm, admin, step, django_assert_num_queries):
    from onboarding.selectors import guide_progress
    from onboarding.services import invitation_send

    invitation_send(tenant=contoso, acting_user=sdm)
    client = login(admin)
    finish(client, contoso, admin)
    url = reverse("onboarding:step", args=[step])
    for n in (1, 10):
        grow(contoso, admin, n)
        rewind(contoso, step)
        data = {"version": guide_progress(tenant=contoso).version}
        with django_assert_num_queries(SAVE_QUERIES[step]):
            assert client.post(url, data).status_code == 302
        # Next again on the step that is now done: the progress doesn't change, nothing is written.
        data = {"version": guide_progress(tenant=contoso).version}
        with django_assert_num_queries(SAVE_QUERIES[step] - 2):
            assert client.post(url, data).status_code == 302


# middleware (3), savepoint + release (2), the locked progress row (1), the
# update (1), the audit row (1) = 8; the contacts steps add one EXISTS query.
SAVE_QUERIES = {"incident-contact": 9, "service-review-contact": 9}
