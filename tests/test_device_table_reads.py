"""Pages that show devices never count or aggregate the device table on a GET.

Environment devices (lists, overview, licences), Permissions and the device lists behind
Service status's numbers.

Counts come from the device tally; lists read one page through an index with a LIMIT. Each page is
requested at 1x and 10x data: the SQL statements must be the same number, and every statement that
reads ``environment_device`` must be a bounded read (a LIMIT, no COUNT, no GROUP BY, no aggregate).
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from environment.models import AntivirusMode
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set, all_devices_set
from tests import factories

pytestmark = pytest.mark.django_db

DEVICE_TABLE = re.compile(r'"environment_device"(?!\w)')
AGGREGATE = re.compile(r"\b(COUNT|SUM|AVG|MIN|MAX)\s*\(|\bGROUP BY\b|\bDISTINCT\b", re.IGNORECASE)


def _estate(tenant, admin, scale: int) -> None:
    """``scale`` x (3 groups, 150 devices in every state, some outside any group)."""
    access_levels_set(
        tenant=tenant, acting_user=admin, investigate=True, respond=False, expected_version=1,
        recently_authenticated=True,
    )  # fmt: skip
    state = access_levels_state(tenant=tenant)
    all_devices_set(tenant=tenant, acting_user=admin, enabled=False, expected_version=state.version, confirm=True)
    for g in range(3 * scale):
        group = factories.device_group(tenant, f"Group {g:03d}")
        factories.devices(tenant, 20, group=group, prefix=f"a{g:03d}")
        factories.devices(tenant, 10, group=group, onboarded=False, prefix=f"n{g:03d}")
        factories.devices(tenant, 10, group=group, av_mode=AntivirusMode.PASSIVE, prefix=f"p{g:03d}")
        factories.devices(tenant, 5, group=None, av_mode=AntivirusMode.DISABLED, prefix=f"u{g:03d}")


def _statements(client, url: str, params: dict[str, str]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, url
    return [q["sql"] for q in captured.captured_queries]


def _unbounded_device_reads(statements: list[str]) -> list[str]:
    return [
        sql
        for sql in statements
        if DEVICE_TABLE.search(sql) and (AGGREGATE.search(sql) or not re.search(r"\bLIMIT\b", sql))
    ]


PAGES = [
    ("readiness:devices/protected", {}),
    ("readiness:devices/not_active", {"after": "a000-000005", "page": "2"}),
    ("readiness:devices/unprotected", {"before": "p001-000000", "page": "3"}),
    ("environment:devices", {}),
    ("environment:devices", {"av": "passive"}),
    ("environment:devices", {"onboarding": "not_onboarded", "after": "n000-000004", "page": "2"}),
    ("environment:devices", {"before": "a001-000000", "page": "2"}),
    ("environment:overview", {}),
    ("environment:licences", {}),
    ("permissions:index", {}),
]


@pytest.mark.parametrize(("name", "params"), PAGES)
def test_device_pages_read_the_same_bounded_sql_at_1x_and_10x(login, contoso, fabrikam, admin, outsider, name, params):
    counts = []
    for tenant, user, scale in ((contoso, admin, 1), (fabrikam, outsider, 10)):
        _estate(tenant, user, scale)
        url_name, _, state = name.partition("/")
        statements = _statements(login(user), reverse(url_name, args=[state] if state else []), params)
        assert _unbounded_device_reads(statements) == [], f"{name} {params} counts or scans the device table"
        counts.append(len(statements))
    assert counts[0] == counts[1], f"{name} {params}: {counts[0]} queries at 1x, {counts[1]} at 10x"


def test_a_device_name_search_counts_with_a_limit(login, contoso, admin):
    _estate(contoso, admin, 1)
    statements = _statements(login(admin), reverse("environment:devices"), {"q": "a00"})
    searched = [sql for sql in statements if DEVICE_TABLE.search(sql)]
    assert searched and all(re.search(r"\bLIMIT\b", sql) for sql in searched)


def test_the_check_catches_an_unbounded_count():
    """The rule above would fail on the statements the pages used to run."""
    assert _unbounded_device_reads(['SELECT COUNT(*) AS "__count" FROM "environment_device" WHERE "tenant_id" = 1'])
    assert _unbounded_device_reads(
        ['SELECT "device_group_id", COUNT("environment_device"."id") FROM "environment_device" GROUP BY 1']
    )
    assert not _unbounded_device_reads(['SELECT "id" FROM "environment_device" WHERE "name" > \'x\' LIMIT 51'])
    assert not _unbounded_device_reads(['SELECT SUM("devices") FROM "environment_devicetally"'])
