"""The guide's Exclusions step (the later document's), reached from Permissions through Manage exclusions:
Next confirms the list, Skip discards what was added in the step; it is optional for finishing the guide."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from exclusions.models import ExcludedDeviceGroup
from exclusions.selectors import exclusion_state
from exclusions.services import exclusion_device_groups_add
from onboarding.selectors import guide_progress
from tests import factories
from tests.test_onboarding_guide import INCIDENT, PERMISSIONS, submit_permissions, version

pytestmark = pytest.mark.django_db

STEP = reverse("onboarding:step", args=["exclusions"])
ADD_DEVICES = reverse("exclusions:add", args=["device-groups"])


@pytest.fixture
def invited(contoso, sdm, admin):
    from onboarding.services import invitation_send

    invitation_send(tenant=contoso, acting_user=sdm)
    contoso.refresh_from_db()
    return contoso


def _add_in_step(client, group, tab="device-groups"):
    return client.post(
        ADD_DEVICES,
        {"group": [group.pk], "version": exclusion_state(tenant=group.tenant).version, "in_guide": "True",
         "next": f"{STEP}?tab={tab}"},
    )  # fmt: skip


def test_permissions_links_to_manage_exclusions_and_next_skips_the_optional_step(login, invited, admin):
    client = login(admin)
    body = client.get(PERMISSIONS).content.decode()
    assert 'data-testid="manage-exclusions"' in body and f'href="{STEP}"' in body
    assert "Step 1 of 5" in body and 'data-testid="step-exclusions"' in body
    # Reachable from Permissions before its Next, as the document's order of steps has it.
    assert client.get(STEP).status_code == 200
    response = submit_permissions(client, invited)
    assert response["Location"] == INCIDENT
    assert guide_progress(tenant=invited).current_step == "incident-contact"


def test_next_confirms_what_was_added_and_goes_on_to_contacts(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    execs = factories.device_group(invited, "Executives")
    response = _add_in_step(client, execs)
    assert response["Location"] == f"{STEP}?tab=device-groups"
    body = client.get(response["Location"]).content.decode()
    assert (
        "Added in this step" in body and "Step 2 of 5" in body and "This page only lists existing device groups" in body
    )
    response = client.post(
        STEP, {"version": version(invited), "exclusions_version": exclusion_state(tenant=invited).version}
    )
    assert response.status_code == 302 and response["Location"] == INCIDENT
    row = ExcludedDeviceGroup.objects.get()
    assert not row.added_in_guide
    assert "exclusions" in guide_progress(tenant=invited).completed_steps
    assert AuditEvent.objects.filter(tenant=invited, action="exclusions.guide_confirmed").count() == 1


def test_skip_discards_only_what_was_added_in_the_step(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    before = factories.device_group(invited, "Before")
    exclusion_device_groups_add(tenant=invited, acting_user=admin, device_group_ids=[before.pk], expected_version=1)
    _add_in_step(client, factories.device_group(invited, "Added"))
    response = client.post(
        STEP, {"version": version(invited), "exclusions_version": exclusion_state(tenant=invited).version, "skip": "1"}
    )
    assert response["Location"] == INCIDENT
    assert [g.name for g in exclusion_state(tenant=invited).device_groups] == ["Before"]
    assert AuditEvent.objects.filter(tenant=invited, action="exclusions.guide_discarded").count() == 1


def test_a_stale_exclusion_list_is_409_and_nothing_is_discarded(login, invited, admin):
    client = login(admin)
    submit_permissions(client, invited)
    _add_in_step(client, factories.device_group(invited, "Added"))
    stale = exclusion_state(tenant=invited).version - 1
    response = client.post(STEP, {"version": version(invited), "exclusions_version": stale, "skip": "1"})
    assert response.status_code == 409 and ExcludedDeviceGroup.objects.filter(added_in_guide=True).exists()


def test_next_before_permissions_goes_back_to_permissions(login, invited, admin):
    client = login(admin)
    client.get(PERMISSIONS)
    response = client.post(STEP, {"version": version(invited), "exclusions_version": 1})
    assert response["Location"] == PERMISSIONS
    assert guide_progress(tenant=invited).current_step == "permissions"


def test_a_reader_sees_the_step_read_only_and_cannot_post(login, invited, admin, reader):
    client = login(reader)
    body = client.get(STEP).content.decode()
    assert 'data-testid="read-only"' in body and 'data-testid="add-device-groups"' not in body
    assert client.post(STEP, {"version": 0, "exclusions_version": 1}).status_code == 403


def test_the_guide_finishes_without_the_optional_step(login, invited, admin):
    from tests.test_onboarding_guide import NEXT_STEPS, through_contacts

    client = login(admin)
    through_contacts(client, invited, admin)
    response = client.post(NEXT_STEPS, {"version": version(invited)})
    assert response.status_code == 302 and guide_progress(tenant=invited).is_finished


def test_the_permissions_step_shows_the_least_privilege_note(login, invited, admin):
    body = login(admin).get(PERMISSIONS).content.decode()
    assert 'data-testid="least-privilege"' in body
    assert "Microsoft recommends that you use roles with the fewest permissions." in body


def test_the_welcome_link_lands_on_the_get_started_page_before_permissions(login, invited, admin, reader):
    overview = reverse("onboarding:overview")
    client = login(admin)
    body = client.get(overview).content.decode()
    assert "Get started with Microsoft Defender Experts for XDR" in body
    assert [s in body for s in ('data-testid="overview-permissions"', 'data-testid="overview-exclusions"')] == [
        True,
        True,
    ]
    assert f'href="{PERMISSIONS}" data-testid="start-guide">Get started<' in body
    submit_permissions(client, invited)
    body = client.get(overview).content.decode()
    assert f'href="{INCIDENT}" data-testid="start-guide">Continue with Incident contact<' in body
    # A reader may look; the page changes nothing for them.
    assert login(reader).get(overview).status_code == 200
