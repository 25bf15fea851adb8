"""Service status over HTTP: the page, its lists, export, Request refresh, provider pages."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from demo.environments import seed_environment
from environment.models import AntivirusMode
from readiness.catalogue import ENTRIES
from readiness.models import ActionStatus, ReadinessState, RefreshRun
from readiness.presenters import NOTE_24H
from readiness.services import readiness_state_for, readiness_sweep
from tenancy.models import ProviderRole, ServicePhase, Tenant
from tests import factories

URL = "/settings/defender-experts/service-status/"

# The actions table is the last on the page (after the History chart and its data table).
ACTIONS_TABLE = 'data-testid="actions-table"'


def refresh(tenant: Tenant) -> ReadinessState:
    readiness_state_for(tenant=tenant)
    ReadinessState.objects.filter(tenant=tenant).update(next_refresh_at=timezone.now())
    readiness_sweep()
    return ReadinessState.objects.get(tenant=tenant)


@pytest.fixture
def assessed(contoso: Tenant) -> ReadinessState:
    seed_environment(contoso, devices=1500)
    return refresh(contoso)


def test_url_names() -> None:
    assert reverse("readiness:service_status") == URL
    assert reverse("readiness_provider:runs") == "/provider/readiness-runs/"


def test_page_shows_the_assessment_with_the_seed_labels(login: Any, admin: Any, assessed: ReadinessState) -> None:
    response = login(admin).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for label in (
        "Actions needed",
        "Protected assets",
        "Complete now",
        "onboard more devices",
        "install more Defender for Identity sensors",
        NOTE_24H,
        "Request refresh",
        "History",
    ):
        assert label in html, label
    assert f'data-testid="devices-protected">{assessed.devices_protected:,}<' in html
    assert f'data-testid="devices-passive">{assessed.devices_passive:,}<' in html
    assert "/environment/devices/?onboarding=not_onboarded" in html
    assert reverse("environment:domain_controllers") in html
    assert html.count('<details class="disclosure readiness-details">') == len(ENTRIES)
    assert "<svg" in html and "history-chart" in html
    # Required actions not completed first by default, each marked.
    first = html.split(ACTIONS_TABLE)[1].split("<tbody>")[1].split("</tr>")[0]
    assert 'data-priority="complete_now"' in first and 'class="readiness-row--now"' in first
    assert 'data-status="completed"' not in first


def test_reader_sees_the_page_but_cannot_request_a_refresh(login: Any, reader: Any, assessed: Any) -> None:
    client = login(reader)
    html = client.get(URL).content.decode()
    assert "Actions needed" in html and 'data-testid="request-refresh"' not in html
    assert client.post(reverse("readiness:request_refresh")).status_code == 403
    assert not AuditEvent.objects.filter(action="readiness.refresh_requested").exists()


def test_operator_cannot_request_a_refresh(login: Any, operator: Any, assessed: Any) -> None:
    assert login(operator).post(reverse("readiness:request_refresh")).status_code == 403


def test_request_refresh_rate_limited_over_http(login: Any, secadmin: Any, assessed: Any) -> None:
    client = login(secadmin)
    response = client.post(reverse("readiness:request_refresh"), follow=True)
    html = response.content.decode()
    assert "Refresh requested. Expect the latest status by" in html
    assert 'data-testid="expected-by"' in html
    response = client.post(reverse("readiness:request_refresh"), follow=True)
    assert "You can request another after" in response.content.decode()
    assert AuditEvent.objects.filter(action="readiness.refresh_requested").count() == 1
    assert client.get(reverse("readiness:request_refresh")).status_code == 405


def test_anonymous_is_sent_to_sign_in(client: Any, contoso: Tenant) -> None:
    response = client.get(URL)
    assert response.status_code == 302 and "/sign-in/" in response["Location"]


def test_provider_staff_is_sent_to_the_provider_area(login: Any, sdm: Any) -> None:
    assert login(sdm).get(URL).status_code == 302


def test_other_tenant_sees_only_its_own_figures(login: Any, outsider: Any, assessed: Any) -> None:
    html = login(outsider).get(URL).content.decode()
    assert 'data-testid="devices-protected">0<' in html
    response = login(outsider).get(reverse("readiness:devices", args=["passive"]))
    assert response.status_code == 200 and "ws-0" not in response.content.decode()


def test_each_number_opens_the_list_that_matches_it(login: Any, admin: Any, assessed: ReadinessState) -> None:
    client = login(admin)
    for state, figure in (
        ("protected", assessed.devices_protected),
        ("passive", assessed.devices_passive),
        ("disabled", assessed.devices_disabled),
        ("not_onboarded", assessed.devices_not_onboarded),
    ):
        response = client.get(reverse("readiness:devices", args=[state]))
        assert response.status_code == 200
        assert response.context["count"] == figure, state
        assert 'data-testid="list-differs"' not in response.content.decode()
    response = client.get(reverse("readiness:identities", args=["protected"]))
    assert response.context["count"] == assessed.identities_protected
    response = client.get(reverse("readiness:domain_controllers", args=["without_sensor"]))
    assert response.context["count"] == assessed.domain_controllers_without_sensor
    # Pagination: 25 a page, by name from where the page before ended (keyset); a bad page number
    # falls back rather than failing.
    first = client.get(reverse("readiness:devices", args=["passive"]))
    last_name = first.context["page_obj"].object_list[-1].name
    assert f"after={last_name}&amp;page=2" in first.content.decode()
    response = client.get(reverse("readiness:devices", args=["passive"]), {"after": last_name, "page": "2"})
    assert response.context["page_obj"].number == 2
    assert response.context["page_obj"].object_list[0].name > last_name
    assert client.get(reverse("readiness:devices", args=["passive"]), {"page": "zzz"}).status_code == 200
    assert client.get(reverse("readiness:devices", args=["bogus"])).status_code == 404
    assert client.get(reverse("readiness:domain_controllers", args=["bogus"])).status_code == 404


def test_list_says_when_the_environment_moved_since_the_refresh(
    login: Any, admin: Any, contoso: Tenant, assessed: Any
) -> None:
    factories.devices(contoso, 7, av_mode=AntivirusMode.PASSIVE)
    html = login(admin).get(reverse("readiness:devices", args=["passive"])).content.decode()
    assert 'data-testid="list-differs"' in html


def test_embedded_list_is_the_partial(login: Any, admin: Any, assessed: Any) -> None:
    response = login(admin).get(reverse("readiness:devices", args=["not_active"]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and 'class="readiness-embedded"' in html


def test_filter_and_sort_as_plain_links_and_htmx(login: Any, admin: Any, assessed: Any) -> None:
    client = login(admin)
    html = client.get(URL, {"status": "not_started"}).content.decode()
    rows = html.split(ACTIONS_TABLE)[1].split("<tbody>")[1].split("</tbody>")[0]
    statuses = {chunk.split('"')[0] for chunk in rows.split('data-status="')[1:]}
    assert statuses == {"not_started"}
    html = client.get(URL, {"product": "mdo"}).content.decode()
    rows = html.split(ACTIONS_TABLE)[1].split("<tbody>")[1].split("</tbody>")[0]
    assert rows.count("<tr ") == 3
    response = client.get(
        URL, {"sort": "title", "dir": "asc"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="actions-section"
    )
    partial = response.content.decode()
    assert "<html" not in partial and 'id="actions-section"' in partial
    titles = [c.split("</summary>")[0] for c in partial.split("<summary>")[1:]]
    assert titles == sorted(titles, key=str.lower)
    # Nonsense parameters fall back to the defaults.
    assert client.get(URL, {"status": "x", "product": "<script>", "sort": "x", "dir": "x"}).status_code == 200


def test_export_csv(login: Any, reader: Any, assessed: ReadinessState) -> None:
    response = login(reader).get(reverse("readiness:export"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:5] == ["Section", "Title", "Product", "Status", "Priority"]
    actions = [r for r in rows[1:] if r[0] == "Action"]
    assert len(actions) == len(ENTRIES)
    assets = {r[1]: r for r in rows if r[0] == "Protected assets"}
    assert assets["Protected devices"][7] == str(assessed.devices_protected)
    assert assets["Protected devices"][9] == str(assessed.devices_to_protect)
    # Filters apply to the export too.
    filtered = login(reader).get(reverse("readiness:export"), {"status": "completed"}).content.decode()
    assert all(r[3] == "Completed" for r in csv.reader(io.StringIO(filtered)) if r and r[0] == "Action")


def test_page_before_the_first_refresh(login: Any, admin: Any) -> None:
    html = login(admin).get(URL).content.decode()
    assert "The first readiness assessment is being prepared." in html
    assert "Not checked yet" in html


def test_constant_query_count_from_1500_to_100000_devices(
    login: Any, admin: Any, contoso: Tenant, django_assert_num_queries: Any
) -> None:
    seed_environment(contoso, devices=1500)
    refresh(contoso)
    client = login(admin)
    client.get(URL)  # warm the session and the cache of this refresh's history
    # session, user, membership with the provider-staff check and the organisation switcher's
    # membership count joined (3); readiness state (1);
    # action statuses (1); change detection (2: latest device/DC/user/licence change in one
    # statement, settings); access health (1, Permissions); the assets excluded from
    # remediation (3: the setting, the devices, the users); open regressions (1). The history (1 more) is
    # read only by the first view after a refresh: it is cached by snapshot generation.
    with django_assert_num_queries(12) as small:
        assert client.get(URL).status_code == 200
    factories.devices(contoso, 98_500, av_mode=AntivirusMode.PASSIVE)
    refresh(contoso)
    with django_assert_num_queries(len(small.captured_queries) + 1):
        client.get(URL)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(URL)
    assert 'data-testid="devices-passive">' in response.content.decode()
    assert ReadinessState.objects.get(tenant=contoso).devices_total == 100_000


# --- Provider pages ---------------------------------------------------------------------------


def test_runs_page_for_staff_only(login: Any, sdm: Any, contoso: Tenant, assessed: Any) -> None:
    response = login(sdm).get(reverse("readiness_provider:runs"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Contoso" in html and "Succeeded" in html and " ms" in html
    assert login(sdm).get(reverse("readiness_provider:runs"), {"outcome": "bogus", "tenant": "x"}).status_code == 404


def test_runs_page_refused_to_tenant_members(login: Any, admin: Any) -> None:
    assert login(admin).get(reverse("readiness_provider:runs")).status_code == 403


def test_provider_tenant_page_and_start_monitoring(login: Any, sdm: Any, contoso: Tenant, assessed: Any) -> None:
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.PREPARING)
    client = login(sdm)
    html = client.get(reverse("readiness_provider:tenant", args=[contoso.pk])).content.decode()
    assert "Not ready" in html and "Start the monitoring phase" in html
    # The verdict counts every required action not completed, In progress ones included.
    required = [e.key for e in ENTRIES if e.required]
    left = ActionStatus.objects.filter(tenant=contoso, key__in=required).exclude(status="completed").count()
    not_started = ActionStatus.objects.filter(tenant=contoso, key__in=required, status="not_started").count()
    assert left > not_started  # the demo has required actions In progress
    assert f"{left} of {len(required)} actions with the Complete now priority aren&#x27;t completed" in html
    url = reverse("readiness_provider:start_monitoring", args=[contoso.pk])
    response = client.post(url, follow=True)
    assert "Readiness isn&#x27;t met" in response.content.decode()
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.PREPARING
    response = client.post(url, {"reason": "Pilot agreed with the CISO"}, follow=True)
    assert "The monitoring phase of Contoso has started." in response.content.decode()
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.MONITORING
    # Confirming Active before the monitoring days are over is refused.
    response = client.post(reverse("readiness_provider:confirm_active", args=[contoso.pk]), follow=True)
    assert "runs until" in response.content.decode()


def test_analyst_cannot_change_phases(login: Any, contoso: Tenant, assessed: Any) -> None:
    analyst = factories.staff(ProviderRole.ANALYST, "analyst@experts.example")
    client = login(analyst)
    assert client.get(reverse("readiness_provider:tenant", args=[contoso.pk])).status_code == 200
    assert (
        client.post(reverse("readiness_provider:start_monitoring", args=[contoso.pk]), {"reason": "x"}).status_code
        == 403
    )
    assert client.post(reverse("readiness_provider:confirm_active", args=[contoso.pk])).status_code == 403


def test_provider_tenant_404s(login: Any, sdm: Any) -> None:
    client = login(sdm)
    assert client.get("/provider/readiness/tenants/999999/").status_code == 404
    other_org_tenant = Tenant.objects.create(
        name="Elsewhere",
        primary_domain="elsewhere.example",
        provider=__import__("tenancy.models", fromlist=["ProviderOrganization"]).ProviderOrganization.objects.create(
            name="Other MSSP", domain="other.example"
        ),
    )
    assert client.get(reverse("readiness_provider:tenant", args=[other_org_tenant.pk])).status_code == 404
    assert client.post(reverse("readiness_provider:start_monitoring", args=[other_org_tenant.pk])).status_code == 404


def test_runs_record_duration_and_counts(assessed: ReadinessState, contoso: Tenant) -> None:
    run = RefreshRun.objects.get(tenant=contoso)
    assert run.devices_total == 1500 and run.actions_total == len(ENTRIES)


def test_lists_export_and_provider_pages_run_fixed_queries(
    login: Any, admin: Any, sdm: Any, contoso: Tenant, django_assert_num_queries: Any
) -> None:
    from django.test import Client

    seed_environment(contoso, devices=300)
    refresh(contoso)
    client = login(admin)
    staff_client = Client()
    staff_client.force_login(sdm)
    pages = [
        # session, user, membership with staff check and switcher count (3) + state (1) + count and page (2)
        (client, reverse("readiness:devices", args=["passive"])),
        (client, reverse("readiness:identities", args=["protected"])),
        # the page's own queries less the template-only ones
        (client, reverse("readiness:export")),
        # session, user, no membership, staff (4) + count and page of runs (2) + the organization filter (1)
        (staff_client, reverse("readiness_provider:runs")),
        # + tenant, state, statuses, change detection, runs, regressions
        (staff_client, reverse("readiness_provider:tenant", args=[contoso.pk])),
    ]
    for c, url in pages:
        c.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for c, url in pages:
        with CaptureQueriesContext(connection) as captured:
            assert c.get(url).status_code == 200
        counts.append(len(captured.captured_queries))
    # Ten times the data: as many devices, identities and refresh runs.
    factories.devices(contoso, 3000, av_mode=AntivirusMode.PASSIVE)
    dc = factories.domain_controller(contoso, sensor=True)
    for i in range(300):
        factories.directory_user(contoso, f"Extra {i}", domain_controller=dc)
    for _ in range(9):
        refresh(contoso)
    for (c, url), expected in zip(pages, counts, strict=True):
        with django_assert_num_queries(expected):
            assert c.get(url).status_code == 200
    assert counts[0] == 6 and counts[3] == 7


def test_access_health_banner_and_provider_access_action(login: Any, admin: Any, contoso: Tenant) -> None:
    from permissions.selectors import access_levels_state
    from permissions.services import access_levels_set, provider_access_remove

    state = access_levels_state(tenant=contoso)
    access_levels_set(
        tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=state.version
    )
    refresh(contoso)
    html = login(admin).get(URL).content.decode()
    assert 'data-testid="access-health-banner"' not in html
    assert 'data-testid="status-entra.provider_access">Completed<' in html
    provider_access_remove(
        tenant=contoso, acting_user=admin, expected_version=access_levels_state(tenant=contoso).version
    )
    refresh(contoso)
    html = login(admin).get(URL).content.decode()
    assert 'data-testid="access-health-banner"' in html
    assert 'data-testid="status-entra.provider_access">Not started<' in html


def test_phase_banner_says_what_happens_next(login: Any, admin: Any, contoso: Tenant) -> None:
    from demo.environments import GOOD_SETTINGS

    seed_environment(
        contoso, devices=50, split={"active": 1.0}, domain_controllers=1, sensors=1, settings=GOOD_SETTINGS
    )
    from permissions.selectors import access_levels_state
    from permissions.services import access_levels_set

    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=False,
        expected_version=access_levels_state(tenant=contoso).version,
    )
    refresh(contoso)
    client = login(admin)
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.PREPARING)
    html = client.get(URL).content.decode()
    assert "Readiness met" in html and "initiates the monitoring phase" in html
    Tenant.objects.filter(pk=contoso.pk).update(
        service_phase=ServicePhase.MONITORING, service_phase_changed_at=timezone.now()
    )
    html = client.get(URL).content.decode()
    assert "Monitoring phase" in html and "The monitoring phase ends on" in html
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.ACTIVE)
    html = client.get(URL).content.decode()
    assert "The Defender Experts service is active" in html


def test_page_shows_open_regressions(login: Any, admin: Any, contoso: Tenant) -> None:
    seed_environment(contoso, devices=50)
    refresh(contoso)
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.ACTIVE)
    factories.devices(contoso, 4, onboarded=False)
    refresh(contoso)
    html = login(admin).get(URL).content.decode()
    assert 'data-testid="regressions"' in html and "4 new unprotected devices" in html
    # Each regression links to what to fix: here, the list of unprotected devices.
    regressions = html.split('data-testid="regressions"')[1].split("</ul>")[0]
    assert f'href="{reverse("readiness:devices", args=["unprotected"])}"' in regressions


def test_change_seen_but_not_confirmed_shows_in_progress(login: Any, admin: Any, contoso: Tenant) -> None:
    from environment import services as env

    seed_environment(contoso, devices=30)
    refresh(contoso)
    client = login(admin)
    assert 'data-testid="status-purview.unified_audit_log">Not started<' in client.get(URL).content.decode()
    env.security_setting_set(tenant=contoso, acting_user=admin, key="purview.unified_audit_log", value="on")
    html = client.get(URL).content.decode()
    assert 'data-testid="status-purview.unified_audit_log">In progress, waiting for the next refresh<' in html
    assert "the next refresh confirms it by" in html
    assert 'data-testid="pending-change"' in html
    # Untouched actions keep their status.
    assert 'data-testid="status-mdo.safe_attachments">Not started<' in html
    refresh(contoso)
    html = client.get(URL).content.decode()
    assert 'data-testid="status-purview.unified_audit_log">Completed<' in html
    assert 'data-testid="pending-change"' not in html


def test_runs_filter_by_organization(login: Any, sdm: Any, contoso: Tenant, fabrikam: Tenant) -> None:
    refresh(contoso)
    refresh(fabrikam)
    html = login(sdm).get(reverse("readiness_provider:runs"), {"tenant": fabrikam.pk}).content.decode()
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    assert "Fabrikam" in body and "Contoso" not in body


# --- Review round: first run, pending changes, what the Entra ID licences action measures ---------------


def test_first_run_shows_no_made_up_figures(login: Any, admin: Any, contoso: Tenant) -> None:
    seed_environment(contoso, devices=40)
    html = login(admin).get(URL).content.decode()
    assert 'data-testid="first-run"' in html and "usually ready within a few minutes" in html
    # The phase banner uses the seed's heading; the phase itself is in its badge.
    assert "Prepare your environment for the Defender Experts service" in html and "Phase: " in html
    # Before the first assessment there are no figures: no zero donut, no "0 protected" against a 0 target.
    assert 'data-testid="actions-not-assessed"' in html and f"The {len(ENTRIES)} actions" in html
    assert 'data-testid="assets-not-assessed"' in html
    assert 'data-testid="devices-protected"' not in html and 'data-testid="count-completed"' not in html
    assert "The next refresh is running now" not in html
    # The ways to act are still offered.
    assert "onboard more devices" in html and "install more Defender for Identity sensors" in html
    refresh(contoso)
    html = login(admin).get(URL).content.decode()
    assert 'data-testid="first-run"' not in html and 'data-testid="devices-protected"' in html


def test_change_is_expected_at_change_time_plus_the_tenants_delay(login: Any, admin: Any, contoso: Tenant) -> None:
    from datetime import timedelta

    from django.utils.dateformat import format as date_format

    from environment import services as env

    seed_environment(contoso, devices=30)
    state = refresh(contoso)
    client = login(admin)
    daily = timezone.localtime(state.next_refresh_at)
    assert f">{date_format(daily, 'd M Y H:i')} UTC<" in client.get(URL).content.decode()
    ReadinessState.objects.filter(pk=state.pk).update(delay=timedelta(minutes=40))
    env.security_setting_set(tenant=contoso, acting_user=admin, key="purview.unified_audit_log", value="on")
    changed_at = Tenant.objects.get(pk=contoso.pk).environment_changed_at
    expected = date_format(timezone.localtime(changed_at + timedelta(minutes=40)), "d M Y H:i")
    # Before any sweep has pulled the due time in, the page already says when the change is picked up,
    # not tomorrow's daily refresh.
    html = client.get(URL).content.decode()
    assert f'data-testid="next-refresh">{expected} UTC<' in html
    assert f"once the next refresh confirms them, by {expected} UTC." in html
    assert f"Next check due by {expected} UTC" in html


def test_licence_seat_change_marks_the_entra_action_as_changed(login: Any, admin: Any, contoso: Tenant) -> None:
    from environment import services as env
    from environment.models import LicenceProduct

    seed_environment(contoso, devices=30, domain_controllers=2, identities_per_dc=20, entra_seats=30)
    refresh(contoso)
    client = login(admin)
    html = client.get(URL).content.decode()
    assert 'data-testid="status-entra.licences">In progress<' in html
    detail = html.split('data-testid="detail-entra.licences">')[1].split("</p>")[0]
    assert "A change was seen" not in detail
    env.licence_set_seats(tenant=contoso, acting_user=admin, product=LicenceProduct.ENTRA_ID_P1, seats=500)
    html = client.get(URL).content.decode()
    detail = html.split('data-testid="detail-entra.licences">')[1].split("</p>")[0]
    assert "the next refresh confirms it by" in detail


def test_entra_licences_row_says_what_is_measured(login: Any, admin: Any, contoso: Tenant) -> None:
    # 2 domain controllers x 20 identities = 40 enabled users, 30 seats.
    seed_environment(contoso, devices=30, domain_controllers=2, identities_per_dc=20, entra_seats=30)
    refresh(contoso)
    html = login(admin).get(URL).content.decode()
    detail = html.split('data-testid="detail-entra.licences">')[1].split("</p>")[0]
    assert "30 Entra ID P1 or P2 licences for 40 enabled users: 10 more licences are needed" in detail
    measured = html.split('data-testid="measured-entra.licences">')[1].split("</p>")[0]
    assert "seats" in measured and "can&#x27;t tell which users are without one" in measured
    # No list of users is pretended; the enabled users it counts are one click away.
    link = html.split('data-testid="enabled-users-entra.licences"')[0].rsplit("<a ", 1)[1]
    assert 'href="/environment/directory/?status=enabled"' in link
    assert "Review the 40 enabled users in your directory" in html
    # Only the one action that can't list what it counts carries the explanation.
    assert html.count('data-testid="measured-') == 1


def test_granting_provider_access_shows_in_progress_until_the_refresh(login: Any, admin: Any, contoso: Tenant) -> None:
    from datetime import timedelta

    from django.utils.dateformat import format as date_format

    from permissions.models import ServiceProviderAccess
    from permissions.selectors import access_levels_state
    from permissions.services import access_levels_set

    seed_environment(contoso, devices=30)
    state = refresh(contoso)
    ReadinessState.objects.filter(pk=state.pk).update(delay=timedelta(minutes=30))
    client = login(admin)
    assert 'data-testid="status-entra.provider_access">Not started<' in client.get(URL).content.decode()
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=False,
        expected_version=access_levels_state(tenant=contoso).version,
    )
    granted_at = ServiceProviderAccess.objects.get(tenant=contoso).updated_at
    html = client.get(URL).content.decode()
    assert 'data-testid="status-entra.provider_access">In progress, waiting for the next refresh<' in html
    detail = html.split('data-testid="detail-entra.provider_access">')[1].split("</p>")[0]
    assert "the next refresh confirms it by" in detail
    expected = date_format(timezone.localtime(granted_at + timedelta(minutes=30)), "d M Y H:i")
    assert f'data-testid="next-refresh">{expected} UTC<' in html
    assert 'data-testid="pending-change"' in html
    refresh(contoso)
    html = client.get(URL).content.decode()
    assert 'data-testid="status-entra.provider_access">Completed<' in html
    assert 'data-testid="pending-change"' not in html


def test_complete_now_actions_are_listed_under_the_chart(login: Any, admin: Any, assessed: ReadinessState) -> None:
    from readiness.models import ActionState

    html = login(admin).get(URL, {"status": "completed"}).content.decode()
    listed = html.split('data-testid="complete-now-list">')[1].split("</ul>")[0]
    required = [e.key for e in ENTRIES if e.required]
    keys = (
        ActionStatus.objects.filter(key__in=required)
        .exclude(status=ActionState.COMPLETED)
        .values_list("key", flat=True)
    )
    assert len(keys) > 0
    # Every required action not completed (In progress ones too), whatever the table's filter, each
    # linking to its row on the unfiltered page.
    assert listed.count("<li>") == len(keys)
    for key in keys:
        assert f'href="{URL}#action-{key.replace(".", "-")}"' in listed


def test_request_refresh_when_one_is_already_due_promises_no_past_time(login: Any, admin: Any, contoso: Tenant) -> None:
    # A freshly seeded tenant: the first assessment is due at once and hasn't run yet.
    seed_environment(contoso, devices=20)
    readiness_state_for(tenant=contoso)
    response = login(admin).post(reverse("readiness:request_refresh"), follow=True)
    html = response.content.decode()
    assert "A refresh is already due; expect the latest status within a few minutes." in html
    assert "Expect the latest status by" not in html


def test_export_before_the_first_assessment_has_no_asset_figures(login: Any, reader: Any, contoso: Tenant) -> None:
    rows = list(csv.reader(io.StringIO(login(reader).get(reverse("readiness:export")).content.decode())))
    assert [r[0] for r in rows[1:]] == ["Action"] * len(ENTRIES)
    assert all(r[3] == "Not checked yet" for r in rows[1:])


def test_status_and_priority_are_two_columns(login: Any, admin: Any, assessed: ReadinessState) -> None:
    """With the demo, required actions still In progress are found by the Complete now priority, and
    the Status filter offers only statuses."""
    client = login(admin)
    html = client.get(URL).content.decode()
    status_select = html.split('id="filter-status"')[1].split("</select>")[0]
    assert "Complete now" not in status_select
    for label in ("Not started", "In progress", "Completed"):
        assert f">{label}</option>" in status_select
    priority_select = html.split('id="filter-priority"')[1].split("</select>")[0]
    assert ">Complete now</option>" in priority_select and ">Recommended</option>" in priority_select
    required = {e.key for e in ENTRIES if e.required}
    in_progress = set(
        ActionStatus.objects.filter(tenant=assessed.tenant, key__in=required, status="in_progress").values_list(
            "key", flat=True
        )
    )
    assert in_progress  # the demo has required actions in progress
    html = client.get(URL, {"priority": "complete_now", "status": "in_progress"}).content.decode()
    rows = html.split(ACTIONS_TABLE)[1].split("<tbody>")[1].split("</tbody>")[0]
    assert {chunk.split('"')[0] for chunk in rows.split('data-key="')[1:]} == in_progress
    assert "No actions match" not in html
    # The donut counts statuses only, and they add up to the catalogue.
    donut = [
        int(html.split(f'data-testid="count-{slug}">')[1].split("<")[0])
        for slug in ("to-complete", "in-progress", "completed")
    ]
    assert sum(donut) == len(ENTRIES)
    assert donut[0] == ActionStatus.objects.filter(tenant=assessed.tenant, status="not_started").count()


def test_service_status_never_shows_an_outdated_verdict_as_current(login: Any, admin: Any, contoso: Tenant) -> None:
    """Permissions changes after a refresh: Service status says at once that the provider-access action
    is waiting for the next refresh, and by when, rather than the last refresh's verdict (even Completed)."""
    from permissions.selectors import access_levels_state
    from permissions.services import access_levels_set, provider_access_remove

    seed_environment(contoso, devices=30)
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=False,
        expected_version=access_levels_state(tenant=contoso).version,
    )
    refresh(contoso)
    client = login(admin)
    html = client.get(URL).content.decode()  # cached: the fragments of this generation
    assert 'data-testid="status-entra.provider_access">Completed<' in html
    provider_access_remove(
        tenant=contoso, acting_user=admin, expected_version=access_levels_state(tenant=contoso).version
    )
    html = client.get(URL).content.decode()
    assert 'data-testid="status-entra.provider_access">In progress, waiting for the next refresh<' in html
    assert 'data-testid="confirm-by-entra.provider_access">Confirmed by <time' in html
    detail = html.split('data-testid="detail-entra.provider_access">')[1].split("</p>")[0]
    assert "Current state" not in detail and "At the last refresh" in detail
    # Counted as in progress by the donut and found by the status filter.
    html = client.get(URL, {"status": "in_progress"}).content.decode()
    assert 'data-key="entra.provider_access"' in html
    html = client.get(URL, {"status": "completed"}).content.decode()
    assert 'data-key="entra.provider_access"' not in html.split(ACTIONS_TABLE)[1].split("<tbody>")[1]
    refresh(contoso)
    html = client.get(URL).content.decode()
    assert 'data-testid="status-entra.provider_access">Not started<' in html
    assert 'data-testid="confirm-by-entra.provider_access"' not in html


def test_the_actions_table_is_at_the_bottom_of_the_page_after_the_history(
    login: Any, admin: Any, contoso: Tenant
) -> None:
    seed_environment(contoso, devices=50)
    refresh(contoso)
    body = login(admin).get(URL).content.decode()
    # The seed: the actions "are listed in a table at the bottom part of the page".
    assert body.index('data-testid="history"') < body.index('data-testid="actions-table"')
    assert body.index('data-testid="protected-assets"') < body.index('data-testid="history"')


def test_get_requests_never_write(login: Any, admin: Any, sdm: Any, contoso: Tenant) -> None:
    """Service status, its lists, the export and the provider's pages read; the sweep creates the state."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seed_environment(contoso, devices=20)
    assert not ReadinessState.objects.filter(tenant=contoso).exists()
    client = login(admin)
    urls = [
        URL,
        reverse("readiness:export"),
        reverse("readiness:devices", args=["not_onboarded"]),
        reverse("readiness:identities", args=["no_sensor"]),
        reverse("readiness:domain_controllers", args=["without_sensor"]),
    ]
    with CaptureQueriesContext(connection) as queries:
        for url in urls:
            assert client.get(url).status_code == 200, url
    writes = [q["sql"] for q in queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert [w for w in writes if "readiness" in w] == []
    assert not ReadinessState.objects.filter(tenant=contoso).exists()
    assert "The first readiness assessment is being prepared." in client.get(URL).content.decode()
    client = login(sdm)
    assert client.get(reverse("readiness_provider:tenant", args=[contoso.pk])).status_code == 200
    assert not ReadinessState.objects.filter(tenant=contoso).exists()
    readiness_sweep()
    assert ReadinessState.objects.get(tenant=contoso).has_refreshed
