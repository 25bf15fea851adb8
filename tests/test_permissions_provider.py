"""The provider's view of each tenant's access, and "attempt an action" through the same evaluator."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set, all_devices_set, provider_access_remove
from tenancy.models import ProviderOrganization, Tenant
from tests import factories

pytestmark = pytest.mark.django_db

LIST = reverse("permissions_provider:access")


def _detail(tenant):
    return reverse("permissions_provider:tenant", args=[tenant.pk])


def _grant(tenant, user, *, respond=False):
    v = access_levels_state(tenant=tenant).version
    return access_levels_set(
        tenant=tenant,
        acting_user=user,
        investigate=True,
        respond=respond,
        expected_version=v,
        recently_authenticated=True,
    )


def test_staff_see_each_tenants_access_in_a_fixed_number_of_queries(
    login, sdm, contoso, fabrikam, admin, outsider, django_assert_num_queries
):
    _grant(contoso, admin, respond=True)
    client = login(sdm)
    # session, user, no membership, provider staff (middleware); tenants, relationships, latest grants.
    with django_assert_num_queries(8):
        response = client.get(LIST)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Contoso" in body and "Fabrikam" in body and "Not granted yet" in body
    assert body.count("180 days left") == 2
    for i in range(10):
        t = factories.tenant(f"Tenant {i}")
        _grant(t, factories.member(t))
    with django_assert_num_queries(8):
        assert client.get(LIST).status_code == 200


def test_tenant_members_cannot_open_the_provider_area(login, admin, contoso):
    client = login(admin)
    assert client.get(LIST).status_code == 403
    assert client.get(_detail(contoso)).status_code == 403


def test_another_providers_tenant_and_malformed_ids_are_404(login, sdm):
    other_org = ProviderOrganization.objects.create(name="Other MSSP", domain="other.example")
    foreign = Tenant.objects.create(name="Elsewhere", primary_domain="elsewhere.example", provider=other_org)
    client = login(sdm)
    assert client.get(_detail(foreign)).status_code == 404
    assert client.get(reverse("permissions_provider:tenant", args=["nope"])).status_code == 404
    assert "Elsewhere" not in client.get(LIST).content.decode()


def test_attempting_an_action_uses_the_evaluator_and_logs_allowed_and_refused(login, sdm, contoso, admin):
    _grant(contoso, admin, respond=True)
    group = factories.device_group(contoso, "Finance")
    factories.devices(contoso, 1, group=group, prefix="fin")
    factories.devices(contoso, 1, prefix="lap")
    client = login(sdm)
    response = client.post(_detail(contoso), {"action": "isolate_device", "device": "fin-000000"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-allowed="1"' in body and "Allowed: Isolate a device" in body
    state = access_levels_state(tenant=contoso)
    all_devices_set(tenant=contoso, acting_user=admin, enabled=False, expected_version=state.version, confirm=True)
    response = client.post(_detail(contoso), {"action": "isolate_device", "device": "fin-000000"})
    body = response.content.decode()
    assert 'data-allowed="0"' in body and "Finance" in body and "Access security data from all devices is off" in body
    response = client.post(_detail(contoso), {"action": "run_antivirus_scan", "device": "lap-000000"})
    assert 'data-allowed="1"' in response.content.decode()
    events = list(
        AuditEvent.objects.filter(tenant=contoso, action__startswith="permissions.expert_action").order_by("id")
    )
    assert [e.action.rsplit("_", 1)[1] for e in events] == ["allowed", "refused", "allowed"]
    assert all(e.actor == sdm for e in events)
    assert events[1].after["code"] == "device_group_out_of_reach" and events[1].after["allowed"] is False
    # The tenant sees the refusal in its own history.
    tenant_page = login(admin).get(reverse("permissions:index")).content.decode()
    assert "Refused: Isolate a device on fin-000000 by Defender Experts" in tenant_page


def test_after_removal_every_attempt_is_refused(login, sdm, contoso, admin):
    state = _grant(contoso, admin, respond=True)
    factories.devices(contoso, 1, prefix="lap")
    provider_access_remove(tenant=contoso, acting_user=admin, expected_version=state.version)
    client = login(sdm)
    detail = client.get(_detail(contoso)).content.decode()
    assert "Removed" in detail
    for action in ("investigate_device", "isolate_device", "run_antivirus_scan", "stop_and_quarantine_file"):
        body = client.post(_detail(contoso), {"action": action, "device": "lap-000000"}).content.decode()
        assert 'data-allowed="0"' in body and "Service provider access was removed" in body
    assert AuditEvent.objects.filter(action="permissions.expert_action_refused").count() == 4


def test_unknown_device_and_bad_action_rerender_with_errors(login, sdm, contoso, admin):
    _grant(contoso, admin)
    client = login(sdm)
    response = client.post(_detail(contoso), {"action": "isolate_device", "device": "ghost"})
    assert response.status_code == 400 and "no device named" in response.content.decode()
    response = client.post(_detail(contoso), {"action": "format_disk", "device": "ghost"})
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action__startswith="permissions.expert_action").exists()


def test_htmx_attempt_returns_the_partial(login, sdm, contoso, admin):
    _grant(contoso, admin)
    factories.devices(contoso, 1, prefix="lap")
    response = login(sdm).post(
        _detail(contoso), {"action": "isolate_device", "device": "lap-000000"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="attempt"') and "no_respond" not in body
    assert "isn&#x27;t granted" in body


def test_the_provider_detail_page_runs_a_fixed_number_of_queries(login, sdm, contoso, admin, django_assert_num_queries):
    _grant(contoso, admin, respond=True)
    client = login(sdm)
    # The expert's first visit in a session is recorded in the tenant's log (Experts' activity).
    client.get(_detail(contoso))
    # session, user, no membership, provider staff, tenant (middleware and scoping); relationship
    # and latest grants; device-group aggregate; the exclusions as the evaluator
    # asks them (setting, device groups, any user group, the two counts) and as
    # the read-only list shows them (setting, device groups, user groups); recent attempts.
    with django_assert_num_queries(17):
        client.get(_detail(contoso))
    for i in range(20):
        factories.devices(contoso, 50, group=factories.device_group(contoso, f"G{i}"))
    with django_assert_num_queries(17):
        assert client.get(_detail(contoso)).status_code == 200


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_provider_attempt_in_the_browser(
    page, live_server, browser_login, sdm, contoso, admin, axe_check, screenshot_dir
):
    from playwright.sync_api import expect

    _grant(contoso, admin)
    factories.devices(contoso, 1, prefix="lap")
    browser_login(sdm)
    page.goto(f"{live_server.url}{LIST}")
    axe_check(page)
    page.get_by_role("link", name="Contoso").click()
    page.get_by_label("Action", exact=True).select_option("isolate_device")
    page.get_by_label("Device name").fill("lap-000000")
    page.get_by_role("button", name="Attempt").click()
    decision = page.get_by_test_id("decision")
    expect(decision).to_contain_text("Refused: Isolate a device")
    expect(decision).to_contain_text("Respond directly to active threats (Security Operator) isn't granted")
    expect(page.locator("#attempt .history")).to_contain_text("Refused: Isolate a device on lap-000000")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/permissions-provider-attempt.png", full_page=True)


def test_anonymous_is_sent_to_sign_in(client, contoso):
    for url in (LIST, _detail(contoso)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.post(_detail(contoso), {"action": "isolate_device", "device": "x"}).status_code == 302


def test_the_list_shows_each_tenants_access_health(login, sdm, contoso, fabrikam, admin, outsider):
    from datetime import timedelta

    from django.utils import timezone

    from permissions.models import AccessGrant

    _grant(contoso, admin)
    _grant(fabrikam, outsider)
    AccessGrant.objects.filter(tenant=fabrikam).update(ends_at=timezone.now() + timedelta(days=5))
    body = login(sdm).get(LIST).content.decode()
    assert f'data-testid="health-{contoso.pk}">Active<' in body
    assert f'data-testid="health-{fabrikam.pk}">Expiring soon<' in body
    AccessGrant.objects.filter(tenant=fabrikam).update(
        starts_at=timezone.now() - timedelta(days=30), ends_at=timezone.now() - timedelta(minutes=1)
    )
    body = login(sdm).get(LIST).content.decode()
    assert f'data-testid="health-{fabrikam.pk}">Expired<' in body


# --- review round: bad input on "attempt an action", the requester's IP ---------------------------


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("", "Enter the name of the device to act on."),
        ("   ", "Enter the name of the device to act on."),
        ("x" * 129, "Ensure this value has at most 128 characters"),
        ("fab-000000", "There’s no device named “fab-000000” in Contoso."),  # Fabrikam's device
        ("999999999999999999999999", "There’s no device named “999999999999999999999999” in Contoso."),
        ("'; DROP TABLE environment_device; --", "There’s no device named"),
    ],
)
def test_a_malformed_or_foreign_device_is_a_form_error_and_nothing_is_logged(
    login, sdm, contoso, fabrikam, admin, device, message
):
    _grant(contoso, admin, respond=True)
    factories.devices(contoso, 1, prefix="lap")
    factories.devices(fabrikam, 1, prefix="fab")
    client = login(sdm)
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.post(_detail(contoso), {"action": "isolate_device", "device": device}, **headers)
        body = response.content.decode()
        assert response.status_code in (200, 400)  # htmx swaps only 2xx; the plain form gets 400
        assert message.replace("’", "&#x27;").replace("'", "&#x27;") in body or message in body, body[:2000]
        assert 'data-testid="decision"' not in body
        assert "fabrikam" not in body.lower()
    assert not AuditEvent.objects.filter(action__startswith="permissions.expert_action").exists()


def test_a_nul_in_the_device_is_refused_before_the_form(login, sdm, contoso, admin):
    _grant(contoso, admin, respond=True)
    response = login(sdm).post(_detail(contoso), {"action": "isolate_device", "device": "lap\x00000000"})
    assert response.status_code == 400  # defender_portal/input_guard.py
    assert not AuditEvent.objects.filter(action__startswith="permissions.expert_action").exists()


@pytest.mark.parametrize("tenant_id", ["abc", "-1", "0", "1.5", "99999999999999999999", "%00"])
def test_malformed_tenant_ids_are_404_for_get_and_post(login, sdm, contoso, tenant_id):
    client = login(sdm)
    url = f"/provider/access/{tenant_id}/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "isolate_device", "device": "x"}).status_code == 404


def test_attempts_record_the_experts_ip(login, sdm, contoso, admin):
    from django.test import Client

    _grant(contoso, admin)
    factories.devices(contoso, 1, prefix="lap")
    client = Client(REMOTE_ADDR="192.0.2.44")
    client.force_login(sdm)
    client.post(_detail(contoso), {"action": "isolate_device", "device": "lap-000000"})
    event = AuditEvent.objects.get(action="permissions.expert_action_refused")
    assert event.ip_address == "192.0.2.44" and event.actor == sdm
