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
from exclusions.selectors import exclusion_counts
from exclusions.services import exclusion_high_value_set, exclusion_user_groups_add
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


DIRECTORY_USERS_SCANNED = re.compile(r'\bFROM "environment_directoryuser"(?!\w)', re.IGNORECASE)
HIGH_VALUE_ONLY = re.compile(r'"environment_directoryuser"\."high_value"\s*(AND|\))', re.IGNORECASE)


def _user_counts_scanning_the_directory(statements: list[str]) -> list[str]:
    """Aggregates that start from the directory's users: their cost grows with every user. The excluded
    users are counted from the excluded groups' memberships (joining their users) and, for high-value
    users, from a branch whose conditions all hold (no OR) and include the tag, so that it reads only
    the tagged users through their partial index."""
    found = []
    for sql in statements:
        if not AGGREGATE.search(sql):
            continue
        for branch in re.split(r"\bUNION\b", sql):
            tagged_only = HIGH_VALUE_ONLY.search(branch) and not re.search(r"\bOR\b", branch, re.IGNORECASE)
            if DIRECTORY_USERS_SCANNED.search(branch) and not tagged_only:
                found.append(sql)
                break
    return found


def _directory(tenant, admin, scale: int, *, high_value: bool) -> None:
    """``scale`` x (40 users: 10 in an excluded group, 5 tagged high value of whom 1 is in the group)."""
    _estate(tenant, admin, 1)
    excluded = []
    for i in range(40 * scale):
        user = factories.directory_user(tenant, f"User {i:04d}", high_value=i % 10 == 5 or i == 0)
        if i % 4 == 0:
            excluded.append(user)
    group = factories.security_group(tenant, "Excluded", members=excluded)
    exclusion_user_groups_add(tenant=tenant, acting_user=admin, directory_group_ids=[group.pk], expected_version=1)
    if high_value:
        exclusion_high_value_set(tenant=tenant, acting_user=admin, enabled=True, confirm=True, expected_version=2)


@pytest.mark.parametrize("high_value", [False, True])
@pytest.mark.parametrize("name", ["permissions:index", "readiness:service_status"])
def test_excluded_users_are_counted_without_reading_the_directory(
    login, contoso, fabrikam, admin, outsider, name, high_value
):
    counts = []
    for tenant, user, scale in ((contoso, admin, 1), (fabrikam, outsider, 10)):
        _directory(tenant, user, scale, high_value=high_value)
        statements = _statements(login(user), reverse(name), {})
        assert _user_counts_scanning_the_directory(statements) == [], f"{name} counts the directory's users"
        counts.append(len(statements))
        assert exclusion_counts(tenant=tenant).users == (14 if high_value else 10) * scale
    assert counts[0] == counts[1], f"{name}: {counts[0]} queries at 1x, {counts[1]} at 10x"


def test_the_check_catches_a_count_over_the_directory():
    """The rule above would fail on the statement the pages used to run."""
    assert _user_counts_scanning_the_directory(
        [
            'SELECT COUNT(*) AS "__count" FROM "environment_directoryuser" WHERE (EXISTS(SELECT 1 AS "a" FROM '
            '"environment_groupmembership" U0 WHERE U0."user_id" = ("environment_directoryuser"."id")) OR '
            '"environment_directoryuser"."high_value") AND "environment_directoryuser"."tenant_id" = 1'
        ]
    )
    assert _user_counts_scanning_the_directory(
        ['SELECT COUNT(*) FROM "environment_directoryuser" WHERE "environment_directoryuser"."tenant_id" = 1']
    )
    assert not _user_counts_scanning_the_directory(
        [
            'SELECT COUNT(*) FROM ((SELECT "user_id" FROM "environment_groupmembership" INNER JOIN '
            '"environment_directoryuser" ON (1 = 1)) UNION (SELECT "id" FROM "environment_directoryuser" WHERE '
            '("environment_directoryuser"."high_value" AND "environment_directoryuser"."tenant_id" = 1))) subquery'
        ]
    )
