"""Settings > Defender Experts > Exclusions over HTTP: the tabs, the add flyout (plain and htmx), removal,
the high-value option, who may change what, other tenants' ids, stale forms and the query counts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from exclusions.models import ExcludedDeviceGroup, ExcludedUserGroup
from exclusions.selectors import exclusion_state
from exclusions.services import exclusion_device_groups_add, exclusion_user_groups_add
from tests import factories

pytestmark = pytest.mark.django_db

INDEX = reverse("exclusions:index")
ADD_DEVICES = reverse("exclusions:add", args=["device-groups"])
ADD_USERS = reverse("exclusions:add", args=["user-groups"])
HIGH_VALUE = reverse("exclusions:high_value")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def groups(contoso, fabrikam):
    execs = factories.device_group(contoso, "Executives")
    factories.devices(contoso, 3, group=execs)
    labs = factories.device_group(contoso, "Labs")
    dc = factories.domain_controller(contoso, "dc01")
    vips = factories.security_group(
        contoso,
        "VIPs",
        members=[
            factories.directory_user(contoso, "Ann"),
            factories.directory_user(contoso, "Old", domain_controller=dc),
        ],
    )
    newsletter = factories.directory_group(contoso, "Newsletter")
    theirs = factories.device_group(fabrikam, "Theirs")
    return {"execs": execs, "labs": labs, "vips": vips, "newsletter": newsletter, "theirs": theirs}


def test_the_page_has_both_tabs_the_notes_and_the_add_buttons(login, admin, groups):
    client = login(admin)
    body = client.get(INDEX).content.decode()
    assert "<h1>Exclusions</h1>" in body and 'aria-current="page" data-testid="tab-device-groups"' in body
    assert "This page only lists existing device groups." in body and "+ Add device groups" not in body
    assert 'data-testid="add-device-groups"' in body and "Add device groups" in body
    assert "all devices and users that will be tagged as high-value in the future" in body
    body = client.get(INDEX, {"tab": "user-groups"}).content.decode()
    assert "This page only lists existing user groups." in body
    assert "On-prem Entra ID users cannot be excluded at this time." in body
    assert 'data-testid="add-user-groups"' in body
    assert 'href="/settings/defender-experts/exclusions/"' in body  # the side navigation


def test_adding_device_groups_plainly_lists_them_with_remove_and_audits(login, admin, groups):
    client = login(admin)
    body = client.get(ADD_DEVICES).content.decode()
    assert "Executives" in body and "Labs" in body and "Theirs" not in body
    response = client.post(ADD_DEVICES, {"group": [groups["execs"].pk, groups["labs"].pk], "version": 1})
    assert response.status_code == 302 and response["Location"] == f"{INDEX}?tab=device-groups"
    body = client.get(response["Location"]).content.decode()
    assert "Excluded 2 device groups from remediation." in body
    assert "Remove device group" in body and 'data-group="Executives"' in body
    assert (
        AuditEvent.objects.filter(action="exclusions.device_groups_added", tenant=groups["execs"].tenant).count() == 1
    )
    # Only what isn't excluded yet is offered.
    assert "No device group matches" not in client.get(ADD_DEVICES).content.decode()
    assert 'data-testid="no-options"' in client.get(ADD_DEVICES).content.decode()


def test_the_search_refreshes_the_list_alone_with_htmx(login, admin, groups):
    client = login(admin)
    response = client.get(ADD_DEVICES, {"q": "lab"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<fieldset id="group-options"')
    assert "Labs" in body and "Executives" not in body
    assert "HX-Request" in response["Vary"]
    # Without script the same search is the whole page.
    assert "<html" in client.get(ADD_DEVICES, {"q": "lab"}).content.decode()


def test_user_groups_offer_only_security_groups_and_count_on_premises_members_apart(login, admin, groups):
    client = login(admin)
    body = client.get(ADD_USERS).content.decode()
    assert "VIPs" in body and "Newsletter" not in body and "1 on-premises (not excluded)" in body
    response = client.post(ADD_USERS, {"group": [groups["newsletter"].pk], "version": 1})
    assert response.status_code == 400 and "Only security groups can be excluded" in response.content.decode()
    response = client.post(ADD_USERS, {"group": [groups["vips"].pk], "version": 1})
    assert response.status_code == 302
    body = client.get(INDEX, {"tab": "user-groups"}).content.decode()
    assert 'data-group="VIPs"' in body and "Remove user group" in body


def test_a_stale_add_is_409_with_the_choice_kept_and_nothing_saved(login, admin, groups):
    exclusion_device_groups_add(
        tenant=groups["execs"].tenant, acting_user=admin, device_group_ids=[groups["execs"].pk], expected_version=1
    )
    response = login(admin).post(ADD_DEVICES, {"group": [groups["labs"].pk], "version": 1})
    body = response.content.decode()
    assert response.status_code == 409 and "Someone else changed the exclusions" in body
    assert f'value="{groups["labs"].pk}" checked' in body and 'name="version" value="2"' in body
    assert not ExcludedDeviceGroup.objects.filter(device_group=groups["labs"]).exists()


def test_removing_asks_first_then_removes(login, admin, groups):
    exclusion_device_groups_add(
        tenant=groups["execs"].tenant, acting_user=admin, device_group_ids=[groups["execs"].pk], expected_version=1
    )
    row = ExcludedDeviceGroup.objects.get()
    url = reverse("exclusions:remove", args=["device-groups", row.pk])
    client = login(admin)
    body = client.get(url).content.decode()
    assert "Remove Executives from the exclusion list?" in body and "data-flyout-content" in body
    assert ExcludedDeviceGroup.objects.exists()
    # A stale confirmation: 409, nothing removed.
    response = client.post(url, {"version": 1, "confirm": "True"})
    assert response.status_code == 409 and ExcludedDeviceGroup.objects.exists()
    response = client.post(url, {"version": 2, "confirm": "True"})
    assert response.status_code == 302 and not ExcludedDeviceGroup.objects.exists()
    assert AuditEvent.objects.filter(action="exclusions.device_group_removed").count() == 1


def test_excluding_high_value_assets_asks_first_with_the_important_text(login, admin, contoso):
    client = login(admin)
    response = client.post(HIGH_VALUE, {"exclude_high_value": "on", "version": 1})
    body = response.content.decode()
    assert response.status_code == 200 and 'data-testid="high-value-confirm"' in body
    assert "tagged as high-value in the future" in body and exclusion_state(tenant=contoso).exclude_high_value is False
    response = client.post(HIGH_VALUE, {"exclude_high_value": "on", "version": 1, "confirm": "1"})
    assert response.status_code == 302 and exclusion_state(tenant=contoso).exclude_high_value is True
    response = client.post(HIGH_VALUE, {"version": 1})
    assert response.status_code == 409 and exclusion_state(tenant=contoso).exclude_high_value is True
    assert client.post(HIGH_VALUE, {"version": 2}).status_code == 302
    assert AuditEvent.objects.filter(action="exclusions.high_value_changed").count() == 2


def test_the_guide_posts_with_in_guide_and_comes_back_to_its_step(login, admin, groups):
    step = "/settings/defender-experts/get-started/?step=exclusions"
    response = login(admin).post(
        ADD_DEVICES, {"group": [groups["execs"].pk], "version": 1, "in_guide": "True", "next": step}
    )
    assert response.status_code == 302 and response["Location"] == step
    assert ExcludedDeviceGroup.objects.get().added_in_guide
    # Another site is never a destination.
    response = login(admin).post(
        ADD_DEVICES, {"group": [groups["labs"].pk], "version": 2, "next": "//evil.example/settings/defender-experts/"}
    )
    assert response["Location"] == f"{INDEX}?tab=device-groups"


def test_a_reader_sees_the_list_read_only_and_every_write_is_403(login, reader, admin, groups):
    exclusion_device_groups_add(
        tenant=groups["execs"].tenant, acting_user=admin, device_group_ids=[groups["execs"].pk], expected_version=1
    )
    client = login(reader)
    body = client.get(INDEX).content.decode()
    assert 'data-testid="read-only"' in body and 'data-group="Executives"' in body
    assert "Remove device group" not in body and 'data-testid="add-device-groups"' not in body
    row = ExcludedDeviceGroup.objects.get()
    writes = [
        (ADD_DEVICES, {"group": [groups["labs"].pk], "version": 2}),
        (ADD_USERS, {"group": [groups["vips"].pk], "version": 2}),
        (reverse("exclusions:remove", args=["device-groups", row.pk]), {"version": 2, "confirm": "True"}),
        (HIGH_VALUE, {"exclude_high_value": "on", "version": 2, "confirm": "1"}),
    ]
    for url, data in writes:
        assert client.post(url, data).status_code == 403, url
    assert exclusion_state(tenant=groups["execs"].tenant).version == 2
    assert ExcludedDeviceGroup.objects.count() == 1 and not ExcludedUserGroup.objects.exists()


def test_another_tenants_or_a_malformed_id_is_404(login, admin, outsider, groups):
    exclusion_user_groups_add(
        tenant=groups["execs"].tenant, acting_user=admin, directory_group_ids=[groups["vips"].pk], expected_version=1
    )
    row = ExcludedUserGroup.objects.get()
    client = login(outsider)
    assert client.get(reverse("exclusions:remove", args=["user-groups", row.pk])).status_code == 404
    assert (
        client.post(
            reverse("exclusions:remove", args=["user-groups", row.pk]), {"version": 2, "confirm": "True"}
        ).status_code
        == 404
    )
    assert client.post(ADD_DEVICES, {"group": [groups["execs"].pk], "version": 1}).status_code == 404
    assert "VIPs" not in client.get(INDEX, {"tab": "user-groups"}).content.decode()
    admin_client = login(admin)
    assert admin_client.post(ADD_DEVICES, {"group": [groups["theirs"].pk], "version": 2}).status_code == 404
    assert admin_client.post(ADD_DEVICES, {"group": ["1x"], "version": 2}).status_code == 404
    assert admin_client.get(reverse("exclusions:remove", args=["user-groups", "abc"])).status_code == 404
    assert admin_client.get(reverse("exclusions:add", args=["printers"])).status_code == 404
    assert ExcludedUserGroup.objects.count() == 1 and not ExcludedDeviceGroup.objects.exists()


# session, user, membership with the provider-staff check and the nav's membership count joined
# (middleware); the exclusion setting, the excluded device groups with their device counts, the
# excluded user groups with their member counts.
INDEX_QUERIES = 6


@pytest.mark.parametrize("scale", [1, 10])
@pytest.mark.parametrize("tab", ["device-groups", "user-groups"])
def test_the_page_runs_a_fixed_number_of_queries(login, admin, contoso, django_assert_num_queries, scale, tab):
    dgs = [factories.device_group(contoso, f"Group {i}") for i in range(3 * scale)]
    for g in dgs:
        factories.devices(contoso, 2, group=g)
    users = [factories.directory_user(contoso, f"User {i}") for i in range(2 * scale)]
    sgs = [factories.security_group(contoso, f"Security {i}", members=users) for i in range(3 * scale)]
    exclusion_device_groups_add(
        tenant=contoso, acting_user=admin, device_group_ids=[g.pk for g in dgs], expected_version=1
    )
    exclusion_user_groups_add(
        tenant=contoso, acting_user=admin, directory_group_ids=[g.pk for g in sgs], expected_version=2
    )
    client = login(admin)
    with django_assert_num_queries(INDEX_QUERIES):
        response = client.get(INDEX, {"tab": tab})
    body = response.content.decode()
    assert body.count("Remove device group" if tab == "device-groups" else "Remove user group") == 3 * scale


# middleware (3, the nav's membership count joined); the version; the options.
ADD_QUERIES = 5


@pytest.mark.parametrize("scale", [1, 10])
def test_the_add_flyout_runs_a_fixed_number_of_queries(login, admin, contoso, django_assert_num_queries, scale):
    users = [factories.directory_user(contoso, f"User {i}") for i in range(2 * scale)]
    for i in range(3 * scale):
        factories.security_group(contoso, f"Security {i}", members=users)
    client = login(admin)
    with django_assert_num_queries(ADD_QUERIES):
        body = client.get(ADD_USERS).content.decode()
    assert body.count('name="group"') == 3 * scale


def test_service_status_says_how_many_assets_are_excluded_and_that_they_can_still_be_protected(
    login, admin, contoso, groups
):
    url = reverse("readiness:service_status")
    client = login(admin)
    body = client.get(url).content.decode()
    assert 'data-testid="excluded-assets"' in body and "No device or user is excluded from remediation" in body
    exclusion_device_groups_add(
        tenant=contoso, acting_user=admin, device_group_ids=[groups["execs"].pk], expected_version=1
    )
    exclusion_user_groups_add(
        tenant=contoso, acting_user=admin, directory_group_ids=[groups["vips"].pk], expected_version=2
    )
    body = client.get(url).content.decode()
    assert 'data-testid="excluded-devices">3<' in body and 'data-testid="excluded-users">1<' in body
    assert "An excluded asset can still be protected" in body
