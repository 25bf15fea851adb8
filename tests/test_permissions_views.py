"""HTTP tests of Settings > Defender Experts > Permissions."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from permissions.exceptions import ALL_DEVICES_WARNING, SKIP_PERMISSIONS_WARNING
from permissions.models import AccessGrant, AccessState, ServiceProviderAccess
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set, all_devices_set
from tenancy.reauth import SESSION_AUTH_TIME
from tests import factories

pytestmark = pytest.mark.django_db

INDEX = reverse("permissions:index")
LEVELS = reverse("permissions:levels")
REMOVE = reverse("permissions:remove")
RESTORE = reverse("permissions:restore")


def _reauth(client: Client) -> None:
    session = client.session
    session[SESSION_AUTH_TIME] = int(time.time())
    session.save()


def _stale(client: Client) -> Client:
    """Make the session's last password proof older than the 15-minute window."""
    session = client.session
    session[SESSION_AUTH_TIME] = int(time.time()) - 16 * 60
    session.save()
    return client


def _devices_form(tenant, version, *, on=False, confirm=False):
    """The access levels' form as the page sends it: the levels as they are, and Access security data from all
    devices (under them, saved by the same Save) on or off."""
    state = access_levels_state(tenant=tenant)
    data = {"version": version, "all_devices_shown": "True"}
    for level in ("investigate", "respond"):
        if getattr(state, level):
            data[level] = "on"
            data[f"{level}_was"] = "True"
    if on:
        data["all_devices"] = "on"
    if confirm:
        data["confirm"] = "1"
    return data


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


def _levels(client, tenant, **data):
    payload = {"version": access_levels_state(tenant=tenant).version, "duration": "180", **data}
    return client.post(LEVELS, payload)


def bulk_devices(tenant, groups, count: int) -> None:
    """Insert ``count`` devices spread over ``groups`` (every tenth outside any group) in one SQL statement."""
    ids = [g.pk for g in groups]
    if not ids:
        factories.devices(tenant, count)
        return
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO environment_device
                (tenant_id, name, os_platform, onboarding_state, av_mode, device_group_id,
                 last_seen, onboarded_at, updated_at)
            SELECT %s, 'bulk-' || g, 'windows11', 'onboarded', 'active',
                   CASE WHEN g %% 10 = 0 THEN NULL ELSE (%s::bigint[])[1 + g %% %s] END, now(), now(), now()
            FROM generate_series(1, %s) AS g
            """,
            [tenant.pk, ids, len(ids), count],
        )


# --- who may see and do what ------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client):
    for url in (INDEX, LEVELS, REMOVE, RESTORE):
        response = client.post(url) if url != INDEX else client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("who", ["operator", "reader"])
def test_readers_and_operators_view_but_cannot_change(request, who, contoso, admin):
    _grant(contoso, admin)
    client = Client()
    client.force_login(request.getfixturevalue(who))
    page = client.get(INDEX)
    assert page.status_code == 200
    assert b"Only a Global Administrator or a Security Administrator can change them" in page.content
    assert b'name="investigate"' not in page.content  # no editable controls
    grant = AccessGrant.objects.get()
    v = access_levels_state(tenant=contoso).version
    for url, data in (
        (LEVELS, {"version": v, "investigate": "on", "respond": "on", "duration": "180"}),
        (LEVELS, _devices_form(contoso, v, confirm=True)),
        (REMOVE, {"version": v, "confirm": "1"}),
        (RESTORE, {"version": v, "investigate": "on", "duration": "180"}),
        (reverse("permissions:renew", args=[grant.pk]), {"version": v, "duration": "365"}),
    ):
        assert client.post(url, data).status_code == 403, url
    assert client.get(REMOVE).status_code == 403
    assert access_levels_state(tenant=contoso).version == v


@pytest.mark.parametrize("who", ["admin", "secadmin"])
def test_global_and_security_administrators_change_permissions(request, who, contoso):
    user = request.getfixturevalue(who)
    client = Client()
    client.force_login(user)
    # The one Access levels form grants service provider access with the first level.
    response = client.post(LEVELS, {"version": 1, "investigate": "on", "duration": "90"})
    assert response.status_code == 302 and response["Location"] == INDEX
    state = access_levels_state(tenant=contoso)
    assert state.provider_access_granted and state.investigate
    assert state.grants["investigate"].days_left == 90
    assert AuditEvent.objects.filter(actor=user, action="permissions.level_granted").count() == 1
    page = client.get(INDEX)
    assert b"Service provider access granted to Microsoft Defender Experts" in page.content
    assert b"Access level Investigate incidents and guide my responses (Security Reader) granted" in page.content


def test_another_tenants_grant_is_404_and_a_malformed_id_is_404(login, contoso, admin, outsider, fabrikam):
    _grant(contoso, admin)
    grant = AccessGrant.objects.get(tenant=contoso)
    client = login(outsider)
    v = access_levels_state(tenant=fabrikam).version
    assert (
        client.post(reverse("permissions:renew", args=[grant.pk]), {"version": v, "duration": "365"}).status_code == 404
    )
    assert client.post(reverse("permissions:renew", args=["abc"]), {"version": v, "duration": "365"}).status_code == 404
    # The outsider's own page shows Fabrikam, never Contoso's access.
    page = client.get(INDEX)
    assert page.status_code == 200
    assert b"admin@contoso.example" not in page.content
    assert b"Not granted yet" in page.content


def test_every_post_is_protected_by_csrf(contoso, admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post(RESTORE, {"version": 1, "investigate": "on", "duration": "180"})
    assert response.status_code == 403
    assert not ServiceProviderAccess.objects.filter(state=AccessState.ACTIVE).exists()
    # With the token from the page, the same form works.
    page = client.get(INDEX)
    token = page.cookies["csrftoken"].value
    response = client.post(
        RESTORE, {"version": 1, "investigate": "on", "duration": "180", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


# --- the page ------------------------------------------------------------------------------


def test_the_page_uses_the_seed_words(login, contoso, admin):
    page = login(admin).get(INDEX).content.decode()
    for words in (
        "Service provider access",
        "Investigate incidents and guide my responses",
        "Respond directly to active threats",
        "Access level: Security Reader",
        "Access level: Security Operator",
        "Access security data from all devices",
        "requires <strong>Service provider access</strong> that lets our experts sign into your tenant",
        "Default",
        "Recommended",
    ):
        assert words in page, words
    assert SKIP_PERMISSIONS_WARNING.replace("'", "&#x27;") in page


def test_pending_access_is_explained_and_offers_a_grant_with_investigate_preselected(login, contoso, admin):
    page = login(admin).get(INDEX).content.decode()
    assert "Not granted yet" in page
    assert "granted together with the access levels you choose" in page
    assert 'data-level="investigate" id="levels_investigate" checked>' in page
    assert 'data-level="respond" id="levels_respond">' in page
    assert f'action="{LEVELS}"' in page and ">Grant access</button>" in page
    assert 'data-state="none"' in page


def test_granting_respond_requires_a_recent_password(login, contoso, admin):
    _grant(contoso, admin)
    client = _stale(login(admin))
    response = _levels(client, contoso, investigate="on", respond="on", duration="90")
    assert response.status_code == 302
    location = urlparse(response["Location"])
    assert location.path == reverse("confirm_password")
    nxt = parse_qs(location.query)["next"][0]
    assert nxt.startswith(INDEX) and "respond=1" in nxt and "duration=90" in nxt
    assert not access_levels_state(tenant=contoso).respond
    # Back from the prompt the choice is shown again, nothing applied yet.
    back = client.get(nxt)
    assert b"Your password is confirmed" in back.content
    assert not access_levels_state(tenant=contoso).respond
    _reauth(client)
    response = _levels(client, contoso, investigate="on", respond="on", duration="90")
    assert response.status_code == 302 and response["Location"].endswith("#access-levels")
    state = access_levels_state(tenant=contoso)
    assert state.respond and state.grants["respond"].days_left == 90


def test_htmx_reauth_uses_a_client_redirect(login, contoso, admin):
    _grant(contoso, admin)
    client = _stale(login(admin))
    v = access_levels_state(tenant=contoso).version
    response = client.post(
        LEVELS, {"version": v, "investigate": "on", "respond": "on", "duration": "180"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and response["HX-Redirect"].startswith(reverse("confirm_password"))


def test_turning_off_respond_shows_the_warning_and_needs_confirmation(login, contoso, admin):
    _grant(contoso, admin, respond=True)
    client = login(admin)
    response = _levels(client, contoso, investigate="on")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="levels-warning"' in body
    assert SKIP_PERMISSIONS_WARNING.replace("'", "&#x27;") in body
    assert "Turn off access" in body
    assert access_levels_state(tenant=contoso).respond
    response = _levels(client, contoso, investigate="on", confirm="1")
    assert response.status_code == 302
    assert not access_levels_state(tenant=contoso).respond


def test_turning_off_all_devices_lists_the_groups_out_of_reach(login, contoso, admin):
    _grant(contoso, admin)
    finance = factories.device_group(contoso, "Finance")
    servers = factories.device_group(contoso, "Servers")
    factories.devices(contoso, 7, group=finance)
    factories.devices(contoso, 5, group=servers)
    factories.devices(contoso, 4)
    client = login(admin)
    v = access_levels_state(tenant=contoso).version
    response = client.post(LEVELS, _devices_form(contoso, v))  # unchecked, no confirm
    body = response.content.decode()
    assert response.status_code == 200
    assert ALL_DEVICES_WARNING.replace("'", "&#x27;") in body
    assert "12 devices</strong> in 2 device groups out of reach" in body
    assert '<td>Finance</td><td class="num">7</td>' in body
    assert access_levels_state(tenant=contoso).all_devices
    response = client.post(LEVELS, _devices_form(contoso, v, confirm=True))
    assert response.status_code == 302
    assert not access_levels_state(tenant=contoso).all_devices
    page = client.get(INDEX).content.decode()
    assert 'data-item="investigate_devices"' in page and "Limited" in page
    assert "Finance (7 devices)" in page and "Devices not in any device group (4 devices)" in page
    # Turning it back on needs no confirmation.
    response = client.post(LEVELS, _devices_form(contoso, v + 1, on=True))
    assert response.status_code == 302 and access_levels_state(tenant=contoso).all_devices


def test_a_stale_form_gets_a_conflict_showing_the_current_state(login, contoso, admin, secadmin):
    _grant(contoso, admin)
    v = access_levels_state(tenant=contoso).version
    all_devices_set(tenant=contoso, acting_user=secadmin, enabled=False, expected_version=v, confirm=True)
    client = login(admin)
    response = client.post(LEVELS, {"version": v, "duration": "180"})  # both off, stale
    assert response.status_code == 409
    body = response.content.decode()
    assert 'data-testid="conflict"' in body and "Nothing was saved" in body
    assert "Access security data from all devices <strong>off</strong>" in body
    assert "Investigate incidents and guide my responses <strong>on</strong>" in body
    assert access_levels_state(tenant=contoso).investigate


def test_bad_input_rerenders_with_errors(login, contoso, admin):
    _grant(contoso, admin)
    client = login(admin)
    response = _levels(client, contoso, investigate="on", respond="", duration="custom")
    # Nothing new is granted, so the missing date doesn't matter for unchanged levels? It does: the form is invalid.
    assert response.status_code == 400
    assert b"Choose the end date" in response.content
    response = client.post(LEVELS, {"version": "abc", "investigate": "on", "duration": "180"})
    assert response.status_code == 400
    response = _levels(client, contoso, investigate="on", duration="custom", custom_end="2001-01-01")
    assert response.status_code == 400 and b"Choose a date after today" in response.content


def test_renewal_over_http(login, contoso, admin):
    _grant(contoso, admin)
    grant = AccessGrant.objects.get()
    client = login(admin)
    v = access_levels_state(tenant=contoso).version
    end = (timezone.now() + timedelta(days=400)).date()
    response = client.post(
        reverse("permissions:renew", args=[grant.pk]),
        {"version": v, "duration": "custom", "custom_end": end.isoformat()},
    )
    assert response.status_code == 302
    grant.refresh_from_db()
    # Access lasts through the chosen day (UTC), so the end date shown is the one chosen.
    assert grant.ends_at.date() == end and (grant.ends_at.hour, grant.ends_at.minute) == (23, 59)
    assert f"{end:%-d %b %Y}, 23:59" in client.get(INDEX).content.decode()
    # Renewing to an earlier date is refused with a message, not a 500.
    earlier = (timezone.now() + timedelta(days=100)).date().isoformat()
    response = client.post(
        reverse("permissions:renew", args=[grant.pk]), {"version": v + 1, "duration": "custom", "custom_end": earlier}
    )
    assert response.status_code == 400 and b"later than the current one" in response.content


def test_renewing_respond_asks_for_the_password(login, contoso, admin):
    _grant(contoso, admin, respond=True)
    grant = AccessGrant.objects.get(level="respond")
    client = _stale(login(admin))
    v = access_levels_state(tenant=contoso).version
    response = client.post(reverse("permissions:renew", args=[grant.pk]), {"version": v, "duration": "365"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("confirm_password"))
    back = client.get(parse_qs(urlparse(response["Location"]).query)["next"][0])
    assert b"Your password is confirmed" in back.content
    _reauth(client)
    response = client.post(reverse("permissions:renew", args=[grant.pk]), {"version": v, "duration": "365"})
    assert response.status_code == 302


def test_removal_needs_confirmation_and_restoration_brings_access_back(login, contoso, admin, secadmin):
    _grant(contoso, admin, respond=True)
    client = login(admin)
    page = client.get(REMOVE)
    assert page.status_code == 200
    assert b"Our experts' monitoring and response stop immediately." in page.content
    v = access_levels_state(tenant=contoso).version
    assert client.post(REMOVE, {"version": v}).status_code == 400  # no confirm
    assert access_levels_state(tenant=contoso).provider_access_granted
    response = client.post(REMOVE, {"version": v, "confirm": "1"})
    assert response.status_code == 302
    state = access_levels_state(tenant=contoso)
    assert state.removed and not state.investigate and not state.respond
    page = client.get(INDEX).content.decode()
    assert 'data-state="removed"' in page and "Restore service provider access" in page
    assert page.count("Not allowed") >= 4
    other = Client()
    other.force_login(secadmin)
    response = other.post(RESTORE, {"version": state.version, "investigate": "on", "duration": "180"})
    assert response.status_code == 302
    assert access_levels_state(tenant=contoso).provider_access_granted


def test_htmx_posts_swap_only_the_content(login, contoso, admin):
    _grant(contoso, admin)
    client = login(admin)
    v = access_levels_state(tenant=contoso).version
    response = client.post(LEVELS, _devices_form(contoso, v, confirm=True), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="permissions-content"') and "<html" not in body
    assert "Access security data from all devices is off." in body


def test_recent_history_is_shown(login, contoso, admin):
    _grant(contoso, admin)
    page = login(admin).get(INDEX).content.decode()
    assert "Recent changes" in page and "Service provider access granted" in page


def test_health_banner_partial_shows_only_when_attention_is_needed(contoso, admin):
    from django.template.loader import render_to_string

    from permissions.selectors import access_health

    _grant(contoso, admin)
    assert "access-health-banner" not in render_to_string(
        "permissions/_access_health_banner.html", {"access_health": access_health(tenant=contoso)}
    )
    AccessGrant.objects.update(ends_at=timezone.now() + timedelta(days=3))
    html = render_to_string("permissions/_access_health_banner.html", {"access_health": access_health(tenant=contoso)})
    assert "Defender Experts access is expiring" in html and "3 days left" in html


# --- fixed number of queries -----------------------------------------------------------------


def _page_queries(client, django_assert_num_queries, n):
    with django_assert_num_queries(n):
        response = client.get(INDEX)
    assert response.status_code == 200
    return response


# session, user, membership with the provider-staff check and the nav's membership count
# joined (middleware); relationship and latest grants (snapshot); device groups with
# counts (one aggregate); the exclusions (setting, excluded device groups, whether a user
# group is excluded, the excluded devices and users counted); recent history.
PAGE_QUERIES = 12


@pytest.mark.parametrize(("groups", "devices"), [(0, 0), (0, 500), (6, 1_000), (60, 10_000)])
def test_page_queries_do_not_grow_with_data(login, contoso, admin, django_assert_num_queries, groups, devices):
    _grant(contoso, admin)
    state = access_levels_state(tenant=contoso)
    all_devices_set(tenant=contoso, acting_user=admin, enabled=False, expected_version=state.version, confirm=True)
    gs = [factories.device_group(contoso, f"Group {i:02d}") for i in range(groups)]
    bulk_devices(contoso, gs, devices)
    client = login(admin)
    response = _page_queries(client, django_assert_num_queries, PAGE_QUERIES)
    assert response.content.decode().count('<td class="num">') >= groups


def test_page_queries_are_identical_for_6_groups_10k_devices_and_60_groups_100k_devices(
    login, contoso, fabrikam, admin, outsider, django_assert_num_queries
):
    """The issue's scale check, in CI: rows go in with one INSERT ... SELECT generate_series each."""
    counts = []
    for tenant, user, groups, devices in ((contoso, admin, 6, 10_000), (fabrikam, outsider, 60, 100_000)):
        _grant(tenant, user)
        state = access_levels_state(tenant=tenant)
        all_devices_set(tenant=tenant, acting_user=user, enabled=False, expected_version=state.version, confirm=True)
        gs = [factories.device_group(tenant, f"Group {i:02d}") for i in range(groups)]
        bulk_devices(tenant, gs, devices)
        client = Client()
        client.force_login(user)
        response = _page_queries(client, django_assert_num_queries, PAGE_QUERIES)
        body = response.content.decode()
        expected_out = devices - devices // 10
        assert f"{expected_out} devices</strong> in {groups} device groups" in body
        counts.append(PAGE_QUERIES)
    assert counts[0] == counts[1]


def test_the_django_admin_cannot_change_access_either(admin, contoso):
    from django.contrib.admin.sites import site
    from django.test import RequestFactory

    from permissions.models import AccessGrant, ServiceProviderAccess

    _grant(contoso, admin)
    request = RequestFactory().get("/")
    admin.is_superuser = admin.is_staff = True
    request.user = admin
    for model in (ServiceProviderAccess, AccessGrant):
        model_admin = site._registry[model]
        obj = model.objects.first()
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, obj)
        assert not model_admin.has_delete_permission(request, obj)


def test_the_sweep_is_scheduled_on_beat_and_retries_safely(settings):
    from permissions.tasks import sweep_access_grants

    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "permissions.sweep_access_grants" in tasks
    assert sweep_access_grants.acks_late and sweep_access_grants.max_retries == 5


def test_renewing_an_ended_grant_explains_why(login, contoso, admin):
    _grant(contoso, admin, respond=True)
    grant = AccessGrant.objects.get(level="respond")
    v = access_levels_state(tenant=contoso).version
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=False,
        expected_version=v,
        confirm_reduced_access=True,
    )
    client = login(admin)
    v = access_levels_state(tenant=contoso).version
    response = client.post(reverse("permissions:renew", args=[grant.pk]), {"version": v, "duration": "365"})
    assert response.status_code == 400
    assert "already ended. Turn it on again instead of renewing it." in response.content.decode()


def test_restoring_access_that_is_already_active_explains_why(login, contoso, admin):
    state = _grant(contoso, admin)
    response = login(admin).post(RESTORE, {"version": state.version, "investigate": "on", "duration": "180"})
    assert response.status_code == 400 and b"already active" in response.content


# --- one clear way to grant each level ----------------------------------------------------------


def _controls(body: str) -> tuple[int, int, int]:
    return body.count('name="investigate"'), body.count('name="respond"'), body.count("<form")


def test_each_state_has_exactly_one_control_per_access_level(login, contoso, admin):
    client = login(admin)
    # Not granted yet: the Access levels form grants service provider access too.
    body = client.get(INDEX).content.decode()
    assert _controls(body)[:2] == (1, 1)
    assert f'action="{RESTORE}"' not in body
    state = _grant(contoso, admin)
    body = client.get(INDEX).content.decode()
    assert _controls(body)[:2] == (1, 1) and ">Save</button>" in body and ">Grant access</button>" not in body
    # Removed: the same single form restores, posting to restore.
    from permissions.services import provider_access_remove

    provider_access_remove(tenant=contoso, acting_user=admin, expected_version=state.version)
    body = client.get(INDEX).content.decode()
    assert _controls(body)[:2] == (1, 1)
    assert f'action="{RESTORE}"' in body and ">Restore service provider access</button>" in body
    assert f'action="{LEVELS}"' not in body
    assert "Any administrator can restore access without asking the provider" in body


def test_the_duration_is_offered_only_while_a_level_can_still_be_granted(login, contoso, admin):
    _grant(contoso, admin)
    client = login(admin)
    body = client.get(INDEX).content.decode()
    # Respond is off: the Access levels form offers a duration for it (plus one renew form).
    assert body.count('name="duration"') == 2 and "How long newly granted access lasts" in body
    _grant(contoso, admin, respond=True)
    body = client.get(INDEX).content.decode()
    # Both on: only the two renew forms carry a duration.
    assert body.count('name="duration"') == 2 and "How long newly granted access lasts" not in body
    assert body.count('<form method="post" action="/settings/defender-experts/permissions/grants/') == 2
    # Saving without a duration (it was hidden) keeps working.
    v = access_levels_state(tenant=contoso).version
    response = client.post(LEVELS, {"version": v, "investigate": "on", "respond": "on"})
    assert response.status_code == 302


def test_granting_nothing_while_pending_is_an_error_not_a_silent_success(login, contoso, admin):
    response = login(admin).post(LEVELS, {"version": 1, "duration": "180"})
    assert response.status_code == 400
    assert b"Turn on at least one access level to grant service provider access." in response.content
    assert not ServiceProviderAccess.objects.filter(state=AccessState.ACTIVE).exists()


def test_restore_validation_errors_come_back_on_the_one_levels_form(login, contoso, admin):
    from permissions.services import provider_access_remove

    state = _grant(contoso, admin)
    provider_access_remove(tenant=contoso, acting_user=admin, expected_version=state.version)
    v = access_levels_state(tenant=contoso).version
    response = login(admin).post(RESTORE, {"version": v, "investigate": "on", "duration": "custom"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose the end date" in body and body.count('name="investigate"') == 1
    assert access_levels_state(tenant=contoso).removed


def test_renewing_extends_from_the_current_end_date(login, contoso, admin):
    _grant(contoso, admin)
    grant = AccessGrant.objects.get()
    before = grant.ends_at
    client = login(admin)
    v = access_levels_state(tenant=contoso).version
    page = client.get(INDEX).content.decode()
    assert f'<label for="renew{grant.pk}_duration">Extend by</label>' in page
    response = client.post(reverse("permissions:renew", args=[grant.pk]), {"version": v, "duration": "90"})
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.ends_at == before + timedelta(days=90)
    # Past the two-year limit: a clear message on the duration, nothing changed.
    response = client.post(reverse("permissions:renew", args=[grant.pk]), {"version": v + 1, "duration": "365"})
    assert response.status_code == 302
    response = client.post(reverse("permissions:renew", args=[grant.pk]), {"version": v + 2, "duration": "365"})
    assert response.status_code == 400
    assert "more than two years from today" in response.content.decode()
    grant.refresh_from_db()
    assert grant.ends_at == before + timedelta(days=90 + 365)


# --- the requester's address on every audit row -------------------------------------------------

IP = "203.0.113.7"


def test_every_permission_change_records_the_requesters_ip(contoso, admin):
    client = Client(REMOTE_ADDR=IP)
    client.force_login(admin)
    _reauth(client)

    def v() -> int:
        return access_levels_state(tenant=contoso).version

    assert client.post(LEVELS, {"version": v(), "investigate": "on", "respond": "on"}).status_code == 302
    assert client.post(LEVELS, _devices_form(contoso, v(), confirm=True)).status_code == 302
    grant = AccessGrant.objects.get(level="investigate")
    assert (
        client.post(reverse("permissions:renew", args=[grant.pk]), {"version": v(), "duration": "30"}).status_code
        == 302
    )
    assert client.post(LEVELS, {"version": v(), "investigate": "on", "confirm": "1"}).status_code == 302
    assert client.post(REMOVE, {"version": v(), "confirm": "1"}).status_code == 302
    assert client.post(RESTORE, {"version": v(), "investigate": "on"}).status_code == 302
    events = AuditEvent.objects.filter(tenant=contoso, action__startswith="permissions.")
    actions = set(events.values_list("action", flat=True))
    assert actions >= {
        "permissions.provider_access_granted",
        "permissions.level_granted",
        "permissions.all_devices_changed",
        "permissions.level_renewed",
        "permissions.level_revoked",
        "permissions.provider_access_removed",
        "permissions.provider_access_restored",
    }
    assert set(events.values_list("ip_address", flat=True)) == {IP}
    assert set(events.values_list("actor", flat=True)) == {admin.pk}
    # The address is in the CSV export too.
    rows = b"".join(client.get(reverse("audit:export"), {"category": "permissions"}).streaming_content).decode()
    assert rows.count(IP) == events.count()


# --- end dates and days left do not depend on the time zone -----------------------------------


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Los_Angeles", "UTC"])
def test_end_dates_and_days_left_read_the_same_in_every_time_zone(login, contoso, admin, zone):
    """End dates are shown in UTC (and say so) and days left count whole 24-hour periods from now,
    so an admin's or the server's time zone never shifts them by a day."""
    from datetime import UTC, datetime

    import time_machine

    now = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)  # already 11 March in Kiritimati, still 10 March in LA
    with time_machine.travel(now, tick=False):
        access_levels_set(
            tenant=contoso,
            acting_user=admin,
            investigate=True,
            respond=False,
            expected_version=1,
            ends_at=datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC),
        )
        with timezone.override(zone):
            body = login(admin).get(INDEX).content.decode()
    assert "Ends on 31 Mar 2026 · 22 days left" in body
    assert "31 Mar 2026, 23:59</span>" in body and "Ends (UTC)" in body
    assert 'data-testid="days-left-investigate">22 days left' in body
    assert "granted 10 Mar 2026" in body


# --- double submits --------------------------------------------------------------------------------


def test_a_double_submit_is_not_reported_as_someone_elses_change(login, contoso, admin, secadmin):
    _grant(contoso, admin)
    client = login(admin)
    v = access_levels_state(tenant=contoso).version
    # The same "turn off all devices" twice with the version the page had.
    form = _devices_form(contoso, v, confirm=True)
    first = client.post(LEVELS, form)
    second = client.post(LEVELS, form)
    assert first.status_code == second.status_code == 302
    assert AuditEvent.objects.filter(action="permissions.all_devices_changed").count() == 1
    # The same levels twice: the second finds them already so.
    v = access_levels_state(tenant=contoso).version
    _reauth(client)
    assert client.post(LEVELS, {"version": v, "investigate": "on", "respond": "on"}).status_code == 302
    assert client.post(LEVELS, {"version": v, "investigate": "on", "respond": "on"}).status_code == 302
    assert AuditEvent.objects.filter(action="permissions.level_granted", after__level="respond").count() == 1
    # Remove twice.
    v = access_levels_state(tenant=contoso).version
    assert client.post(REMOVE, {"version": v, "confirm": "1"}).status_code == 302
    assert client.post(REMOVE, {"version": v, "confirm": "1"}).status_code == 302
    assert AuditEvent.objects.filter(action="permissions.provider_access_removed").count() == 1
    # A stale form asking for something different is still a conflict, with nothing overwritten.
    response = client.post(RESTORE, {"version": v, "investigate": "on"})
    assert response.status_code == 409 and access_levels_state(tenant=contoso).removed


def test_an_unchanged_submit_says_nothing_changed(login, contoso, admin):
    _grant(contoso, admin)
    client = login(admin)
    v = access_levels_state(tenant=contoso).version
    client.post(LEVELS, {"version": v, "investigate": "on"})
    page = client.get(INDEX).content.decode()
    assert "Nothing changed: the access levels were already as you chose." in page
    assert access_levels_state(tenant=contoso).version == v


# --- stale edits keep the admin's values (web core: Conflict -> 409) ------------------------------


def _checked(body: str, field_id: str) -> bool:
    import re

    tag = re.search(rf'<input[^>]*id="{field_id}"[^>]*>', body)
    assert tag, field_id
    return "checked" in tag.group(0)


@pytest.mark.parametrize("htmx", [False, True])
def test_a_stale_levels_form_is_409_with_the_admins_choice_kept_against_the_current_version(
    login, contoso, admin, secadmin, htmx
):
    _grant(contoso, admin)
    v = access_levels_state(tenant=contoso).version
    all_devices_set(tenant=contoso, acting_user=secadmin, enabled=False, expected_version=v, confirm=True)
    client = login(admin)
    headers = {"HX-Request": "true"} if htmx else {}
    # The admin turns Investigate off on a page loaded before secadmin's change.
    response = client.post(LEVELS, {"version": v, "duration": "180"}, headers=headers)
    assert response.status_code == 409 and "HX-Request" in response["Vary"]
    body = response.content.decode()
    assert 'data-testid="conflict"' in body
    assert not _checked(body, "levels_investigate"), "the admin's own choice (off) is kept"
    current = access_levels_state(tenant=contoso).version
    assert f'name="version" value="{current}"' in body
    assert access_levels_state(tenant=contoso).investigate, "nothing was overwritten"


def test_a_stale_all_devices_form_keeps_the_admins_choice(login, contoso, admin, secadmin):
    _grant(contoso, admin)
    v = access_levels_state(tenant=contoso).version
    form = _devices_form(contoso, v, confirm=True)  # all devices off, as read before secadmin's change
    access_levels_set(
        tenant=contoso,
        acting_user=secadmin,
        investigate=True,
        respond=True,
        expected_version=v,
        recently_authenticated=True,
    )
    response = login(admin).post(LEVELS, form)  # turn off, stale
    assert response.status_code == 409
    body = response.content.decode()
    # The admin's own values stay (all devices off, Respond not chosen), against the current version.
    assert not _checked(body, "levels_all_devices") and not _checked(body, "levels_respond")
    assert f'name="version" value="{access_levels_state(tenant=contoso).version}"' in body
    state = access_levels_state(tenant=contoso)
    assert state.all_devices and state.respond, "nothing was overwritten"


def test_the_page_shows_the_later_documents_least_privilege_note(login, contoso, admin):
    body = login(admin).get(INDEX).content.decode()
    assert 'data-testid="least-privilege"' in body
    assert "Global Administrator is a highly privileged role that should be limited to emergency scenarios" in body


def test_all_devices_sits_under_the_access_levels_in_their_form(login, contoso, admin):
    _grant(contoso, admin)
    body = login(admin).get(INDEX).content.decode()
    levels = body[body.index('id="access-levels"') :]
    form = levels[: levels.index("</form>")]
    # Under the levels, before the one Save; no card or form of its own.
    assert form.index('id="levels_respond"') < form.index('id="levels_all_devices"') < form.index("levels-submit")
    assert "Access security data from all devices" in form
    assert 'id="all-devices-title"' not in body and "/all-devices/" not in body


def test_one_confirmation_shows_every_risky_part_of_the_save(login, contoso, admin):
    _grant(contoso, admin, respond=True)
    client = login(admin)
    v = access_levels_state(tenant=contoso).version
    # Respond off and all devices off in one Save, unconfirmed: both warnings, nothing saved.
    form = {"version": v, "investigate": "on", "investigate_was": "True", "respond_was": "True"}
    response = client.post(LEVELS, {**form, "all_devices_shown": "True"})
    body = response.content.decode()
    assert response.status_code == 200
    for box in ('id="levels-confirm"', 'id="all-devices-confirm"'):
        tag = body[body.index(box) - 120 : body.index(box)]
        assert "hidden" not in tag.rsplit("<div", 1)[1], box
    state = access_levels_state(tenant=contoso)
    assert state.respond and state.all_devices and state.version == v
    response = client.post(LEVELS, {**form, "all_devices_shown": "True", "confirm": "1"})
    assert response.status_code == 302
    state = access_levels_state(tenant=contoso)
    assert not state.respond and not state.all_devices
