"""Settings > Defender Experts > Audit log: tenant-scoped, filterable, exportable, never editable."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set, all_devices_set

pytestmark = pytest.mark.django_db

LOG = reverse("audit:log")
EXPORT = reverse("audit:export")


@pytest.fixture
def history(contoso, fabrikam, admin, secadmin, outsider):
    access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=1)
    v = access_levels_state(tenant=contoso).version
    all_devices_set(tenant=contoso, acting_user=secadmin, enabled=False, expected_version=v, confirm=True)
    audit_record(tenant=contoso, acting_user=admin, action="contacts.added", summary='=HYPERLINK("http://x")')
    access_levels_set(tenant=fabrikam, acting_user=outsider, investigate=True, respond=False, expected_version=1)


def _csv(response):
    content = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(content)))


def test_anonymous_is_redirected(client):
    assert client.get(LOG).status_code == 302
    assert client.get(EXPORT).status_code == 302


@pytest.mark.parametrize("who", ["admin", "secadmin", "operator", "reader"])
def test_every_member_reads_their_own_tenants_log_only(request, login, history, who):
    body = login(request.getfixturevalue(who)).get(LOG).content.decode()
    assert "Access security data from all devices turned off" in body
    assert "admin@fabrikam.example" not in body
    # Access granted, level granted, all devices, contacts.added and the member's own sign-in; not Fabrikam's.
    assert "5 events" in body


def test_filters_narrow_the_log(login, admin, history):
    client = login(admin)
    body = client.get(LOG, {"category": "permissions"}).content.decode()
    assert "3 events" in body and "HYPERLINK" not in body
    body = client.get(LOG, {"actor": "secadmin@contoso.example"}).content.decode()
    assert "1 event matches" in body and "turned off" in body
    body = client.get(LOG, {"action": "permissions.level_granted"}).content.decode()
    assert "1 event " in body
    body = client.get(LOG, {"q": "all devices"}).content.decode()
    assert "1 event " in body
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert "0 events" in client.get(LOG, {"from": tomorrow}).content.decode()
    response = client.get(LOG, {"from": tomorrow, "to": "2001-01-01"})
    assert (
        response.status_code == 200 and "The end date must be on or after the start date" in response.content.decode()
    )
    assert client.get(LOG, {"from": "not-a-date", "page": "x"}).status_code == 200


def test_csv_export_follows_the_filters_and_neutralises_formulas(login, admin, history):
    client = login(admin)
    response = client.get(EXPORT)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = _csv(response)
    assert len(rows) == 5  # with the sign-in
    assert set(rows[0]) == {
        "time_utc",
        "actor",
        "action",
        "summary",
        "target_type",
        "target_id",
        "before",
        "after",
        "ip_address",
        "user_agent",
    }
    toggled = next(r for r in rows if r["action"] == "permissions.all_devices_changed")
    assert toggled["actor"] == "secadmin@contoso.example"
    assert toggled["before"] == '{"all_devices": true}' and toggled["after"] == '{"all_devices": false}'
    assert toggled["time_utc"].endswith("+00:00")
    formula = next(r for r in rows if r["action"] == "contacts.added")
    assert formula["summary"].startswith("'=")
    only_permissions = _csv(client.get(EXPORT, {"category": "permissions", "actor": "admin@contoso.example"}))
    assert {r["action"] for r in only_permissions} == {
        "permissions.provider_access_granted",
        "permissions.level_granted",
    }
    assert all("fabrikam" not in r["actor"] for r in rows)


def _next_link(body: str, rel: str) -> dict[str, str]:
    found = re.search(rf'href="\?([^"]*)" rel="{rel}"', body)
    assert found, f"no {rel} link"
    return dict(parse_qsl(html.unescape(found.group(1))))


def _summaries(body: str) -> list[str]:
    return re.findall(r'<td class="audit-change">(Row \d+)</td>', body)


def test_the_log_pages_by_keyset_in_a_fixed_number_of_queries(login, admin, contoso, history):
    """The first page or the next, a log or one ten times longer: the same statements, no OFFSET, a count
    bounded by a LIMIT. Events sharing a timestamp are neither skipped nor repeated across pages."""
    client = login(admin)
    # Newer than the history's events, three to a second, so that pages split runs of equal timestamps.
    same_moment = timezone.now() + timedelta(days=1)

    def add(n: int, start: int) -> None:
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    tenant=contoso,
                    actor_label=f"user{i % 7}@contoso.example",
                    action="contacts.added",
                    summary=f"Row {i}",
                    created_at=same_moment - timedelta(seconds=i // 3),
                )
                for i in range(start, start + n)
            ]
        )

    def get(params: dict[str, str]) -> tuple[str, list[str]]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(LOG, params)
        assert response.status_code == 200
        return response.content.decode(), [q["sql"] for q in captured.captured_queries]

    add(60, 0)
    client.get(LOG)
    counts = []
    for scale in (1, 10):
        body, first = get({"category": "contacts"})
        seen = _summaries(body)
        body, second = get(_next_link(body, "next"))
        seen += _summaries(body)
        counts += [len(first), len(second)]
        for sql in first + second:
            assert "OFFSET" not in sql
            if '"audit_auditevent"' in sql and "COUNT(" in sql:
                assert "LIMIT" in sql
        if scale == 1:
            add(540, 60)  # ten times the events
    assert len(set(counts)) == 1, counts
    matching = AuditEvent.objects.filter(tenant=contoso, action__startswith="contacts.")
    total = matching.count()
    assert f"Page 2 of {-(-total // 50)}" in body and f"{total} events match the filters" in body
    newest = list(matching.order_by("-created_at", "-id").values_list("summary", flat=True)[:100])
    assert seen == newest and len(set(seen)) == 100
    back, _ = get(_next_link(body, "prev"))
    assert "Page 1 of" in back and _summaries(back) == seen[:50]


def test_a_log_longer_than_the_count_limit_says_more_than(login, admin, contoso, history, monkeypatch):
    from audit import selectors

    monkeypatch.setattr(selectors, "COUNT_LIMIT", 20)
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(tenant=contoso, actor_label="a", action="contacts.added", summary=f"Row {i}", created_at=now)
            for i in range(60)
        ]
    )
    body = login(admin).get(LOG).content.decode()
    assert "More than 20 events." in body and "Page 1</span>" in body
    assert "Page 1 of" not in body


def test_a_hand_edited_cursor_shows_the_first_page(login, admin, history):
    client = login(admin)
    cursors = [
        {"after": "nonsense"},
        {"before": "2026-01-01~x"},
        {"after": "2026-01-01T00:00:00~1"},
        {"page": "9"},
        # Well-formed, past either end of the log.
        {"after": "1999-01-01T00:00:00+00:00~1", "page": "2"},
        {"before": "2999-01-01T00:00:00+00:00~1", "page": "2"},
    ]
    for params in cursors:
        response = client.get(LOG, params)
        body = response.content.decode()
        assert response.status_code == 200 and "Previous" not in body and "events." in body


def test_the_audit_log_cannot_be_edited_in_the_django_admin(admin, history):
    model_admin = site._registry[AuditEvent]
    request = RequestFactory().get("/")
    admin.is_superuser = True
    admin.is_staff = True
    request.user = admin
    event = AuditEvent.objects.first()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()


def test_no_portal_url_edits_the_log(login, admin, history):
    client = login(admin)
    assert client.post(LOG).status_code == 405
    assert client.post(EXPORT).status_code == 405


def test_htmx_filtering_swaps_only_the_results(login, admin, history):
    response = login(admin).get(LOG, {"category": "permissions"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="audit-results">') and "<html" not in body
    assert "export.csv?category=permissions" in body


def test_the_page_shows_where_a_change_came_from(login, contoso, admin):
    audit_record(
        tenant=contoso, acting_user=admin, action="permissions.level_granted", summary="x", ip_address="203.0.113.9"
    )
    body = login(admin).get(LOG).content.decode()
    assert '<span class="muted audit-ip">from 203.0.113.9</span>' in body


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Los_Angeles"])
def test_day_filters_and_times_are_utc_whatever_the_active_time_zone(login, contoso, admin, zone):
    from datetime import UTC, datetime

    import time_machine

    # 23:30 UTC on 10 March: 11 March in Kiritimati, still 10 March (15:30) in Los Angeles.
    with time_machine.travel(datetime(2026, 3, 10, 23, 30, tzinfo=UTC), tick=False):
        audit_record(tenant=contoso, acting_user=admin, action="contacts.added", summary="Late change")
    client = login(admin)
    with timezone.override(zone):
        body = client.get(LOG, {"from": "2026-03-10", "to": "2026-03-10"}).content.decode()
        assert "1 event matches" in body and "2026-03-10 23:30:00" in body
        assert "0 events" in client.get(LOG, {"from": "2026-03-11", "to": "2026-03-11"}).content.decode()
