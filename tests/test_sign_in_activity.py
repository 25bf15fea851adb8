"""Sign-in activity and the Experts' activity view in the tenant's Audit log.

Members' sign-ins, failures and lockouts are written in their tenant's log with
the client IP and user agent (they used to have no tenant). The provider's
experts are recorded when they open the tenant, and every action they attempt,
allowed or refused, with the reason.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from environment.models import AntivirusMode
from tenancy.models import ProviderRole
from tests import factories
from tests.factories import PASSWORD, totp_code

pytestmark = pytest.mark.django_db

LOG = reverse("audit:log")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"


def _sign_in(client, email, password, ip="203.0.113.7"):
    return client.post(
        reverse("login"),
        {"login": email, "username": email, "password": password},
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT=BROWSER,
    )


def test_a_members_sign_in_is_in_their_tenants_log_with_ip_and_user_agent(client, admin, contoso, fabrikam):
    _sign_in(client, admin.email, PASSWORD)
    _second_factor(client)
    event = AuditEvent.objects.get(action="auth.sign_in")
    assert event.tenant == contoso and event.actor == admin
    assert event.ip_address == "203.0.113.7" and event.user_agent == BROWSER
    assert not AuditEvent.objects.filter(tenant=fabrikam).exists()


def _second_factor(client, ip="203.0.113.7"):
    return client.post(reverse("mfa_authenticate"), {"code": totp_code()}, REMOTE_ADDR=ip, HTTP_USER_AGENT=BROWSER)


def test_failures_and_the_lockout_are_in_the_members_tenant_log(client, admin, contoso, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, admin.email, "wrong-password")
    failures = AuditEvent.objects.filter(tenant=contoso, action="auth.sign_in_failed")
    assert failures.count() == settings.AXES_FAILURE_LIMIT
    assert all(e.ip_address == "203.0.113.7" and e.user_agent == BROWSER and e.actor is None for e in failures)
    locked = AuditEvent.objects.get(tenant=contoso, action="auth.locked_out")
    assert locked.actor_label == admin.email and locked.user_agent == BROWSER


def test_an_unknown_address_is_recorded_without_a_tenant(client, contoso):
    _sign_in(client, "nobody@contoso.example", "whatever-it-is")
    event = AuditEvent.objects.get(action="auth.sign_in_failed")
    assert event.tenant is None and event.actor_label == "nobody@contoso.example"


def test_the_sign_ins_view_shows_only_sign_in_activity(client, login, admin, reader, contoso):
    _sign_in(Client(), reader.email, "wrong-password")
    reader_client = Client()
    _sign_in(reader_client, reader.email, PASSWORD)
    _second_factor(reader_client)
    page = login(admin).get(LOG, {"view": "sign-ins"}).content.decode()
    assert "reader@contoso.example signed in" in page and "Failed sign-in for reader@contoso.example" in page
    assert "203.0.113.7" in page and "Chrome/131.0" in page
    assert 'aria-current="page" data-testid="view-sign-ins"' in page


@pytest.fixture
def contoso_with_access(contoso, admin, django_capture_on_commit_callbacks):
    from permissions.selectors import access_levels_state
    from permissions.services import access_levels_set

    with django_capture_on_commit_callbacks(execute=True):
        access_levels_set(
            tenant=contoso,
            acting_user=admin,
            investigate=True,
            respond=False,
            expected_version=access_levels_state(tenant=contoso).version,
            confirm_reduced_access=True,
        )
    factories.devices(contoso, 1, prefix="lap", av_mode=AntivirusMode.ACTIVE)
    return contoso


def test_experts_activity_shows_their_session_and_every_attempt_with_the_reason(
    client, login, admin, sdm, contoso_with_access
):
    contoso = contoso_with_access
    expert = login(sdm)
    detail = reverse("permissions_provider:tenant", args=[contoso.pk])
    device = contoso.devices.get().name
    assert expert.get(detail, HTTP_USER_AGENT=BROWSER).status_code == 200
    expert.get(detail)  # the same session: one record
    expert.post(detail, {"action": "isolate_device", "device": device})
    expert.post(detail, {"action": "investigate_device", "device": device})
    sessions = AuditEvent.objects.filter(tenant=contoso, action="experts.session_started")
    assert sessions.count() == 1 and sessions.get().actor == sdm and sessions.get().user_agent == BROWSER
    refused = AuditEvent.objects.get(tenant=contoso, action="permissions.expert_action_refused")
    allowed = AuditEvent.objects.get(tenant=contoso, action="permissions.expert_action_allowed")
    assert refused.after["reason"] and allowed.after["allowed"] is True

    page = login(admin).get(LOG, {"view": "experts"}).content.decode()
    assert "sdm@experts.example (Defender Experts) signed in" in page
    assert "Refused: Isolate a device on lap" in page and "Allowed: Investigate a device on lap" in page
    # Members' own changes are not experts' activity.
    assert 'title="permissions.level_granted"' not in page


def test_a_refused_provider_action_is_recorded_with_the_reason(login, contoso):
    analyst = factories.staff(ProviderRole.ANALYST, "analyst@experts.example")
    client = login(analyst)
    response = client.post(reverse("readiness_provider:start_monitoring", args=[contoso.pk]), {"reason": "x"})
    assert response.status_code == 403
    event = AuditEvent.objects.get(tenant=contoso, action="experts.action_refused")
    assert event.actor == analyst and event.after["allowed"] is False and event.after["reason"]
    assert "start_monitoring" in event.after["attempted"]


def test_another_tenants_admin_sees_none_of_it(client, login, admin, outsider, sdm, contoso_with_access):
    _sign_in(client, admin.email, PASSWORD)
    _second_factor(client)
    login(sdm).get(reverse("permissions_provider:tenant", args=[contoso_with_access.pk]))
    for view in ("sign-ins", "experts"):
        page = login(outsider).get(LOG, {"view": view}).content.decode()
        assert "admin@contoso.example" not in page and "sdm@experts.example" not in page
