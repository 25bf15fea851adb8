"""Environment > Directory pages its users and its groups by keyset, each list on its own cursor."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from environment.models import DirectoryGroup, DirectoryUser, GroupMembership
from environment.views import GROUPS_PER_PAGE, USERS_PER_PAGE

pytestmark = pytest.mark.django_db

DIRECTORY = reverse("environment:directory")


def _add(tenant, users: int, groups: int, start: int) -> None:
    """Users three to a name (pages split runs of equal names), groups with a few members each."""
    made = DirectoryUser.objects.bulk_create(
        [
            DirectoryUser(
                tenant=tenant,
                display_name=f"Person {i // 3:04d}",
                user_principal_name=f"person{i}@{tenant.primary_domain}",
                enabled=True,
            )
            for i in range(start, start + users)
        ]
    )
    teams = DirectoryGroup.objects.bulk_create(
        [DirectoryGroup(tenant=tenant, display_name=f"Team {i:04d}") for i in range(start, start + groups)]
    )
    GroupMembership.objects.bulk_create(
        [GroupMembership(group=g, user=u) for g in teams for u in made[: 1 + teams.index(g) % 3]]
    )


def _link(body: str, testid: str) -> dict[str, str]:
    found = re.search(rf'href="\?([^"]*)" rel="\w+" data-testid="{testid}"', body)
    assert found, f"no {testid} link"
    return dict(parse_qsl(html.unescape(found.group(1))))


def _users(body: str) -> list[str]:
    return re.findall(r'<tr id="user-(\d+)"', body)


def _groups(body: str) -> list[str]:
    return re.findall(r'<tr data-group="([^"]+)"', body)


def _ordered_users(tenant) -> list[str]:
    return [
        str(pk)
        for pk in DirectoryUser.objects.filter(tenant=tenant)
        .order_by("display_name", "id")
        .values_list("pk", flat=True)
    ]


def test_the_directory_pages_by_keyset_in_a_fixed_number_of_queries(login, admin, contoso):
    """First page, next users, next groups; a directory or one ten times larger: the same statements, no
    OFFSET, every COUNT bounded by a LIMIT, member counts never grouped over the whole membership."""
    client = login(admin)

    def get(params: dict[str, str]) -> tuple[str, list[str]]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(DIRECTORY, params)
        assert response.status_code == 200
        return response.content.decode(), [q["sql"] for q in captured.captured_queries]

    _add(contoso, 2 * USERS_PER_PAGE, 2 * GROUPS_PER_PAGE, 0)
    client.get(DIRECTORY)  # warm the session
    counts = []
    for scale in (1, 10):
        first, a = get({})
        users_next, b = get(_link(first, "users-next"))
        groups_next, c = get(_link(first, "groups-next"))
        counts += [len(a), len(b), len(c)]
        for sql in a + b + c:
            assert "OFFSET" not in sql
            if "COUNT(" in sql and ("environment_directoryuser" in sql or "environment_directorygroup" in sql):
                assert "LIMIT" in sql, sql
            # Member counts per group on the page, not a GROUP BY of every group's memberships.
            assert 'GROUP BY "environment_directorygroup"' not in sql, sql
        if scale == 1:
            _add(contoso, 18 * USERS_PER_PAGE, 18 * GROUPS_PER_PAGE, 2 * USERS_PER_PAGE)
    assert len(set(counts)) == 1, counts
    users = DirectoryUser.objects.filter(tenant=contoso).count()
    assert f"{users:,} users" in first and f"Page 2 of {-(-users // USERS_PER_PAGE)}" in users_next


def test_walking_one_list_across_a_page_boundary_leaves_the_other_where_it_is(login, admin, contoso):
    # Users three to a name, fifty to a page: page 1 ends inside a run of equal names.
    _add(contoso, 2 * USERS_PER_PAGE + 10, 2 * GROUPS_PER_PAGE + 5, 0)
    client = login(admin)
    ordered = _ordered_users(contoso)
    teams = list(
        DirectoryGroup.objects.filter(tenant=contoso).order_by("display_name").values_list("display_name", flat=True)
    )

    first = client.get(DIRECTORY).content.decode()
    assert _users(first) == ordered[:USERS_PER_PAGE] and _groups(first) == teams[:GROUPS_PER_PAGE]
    second = client.get(DIRECTORY, _link(first, "users-next")).content.decode()
    assert _users(second) == ordered[USERS_PER_PAGE : 2 * USERS_PER_PAGE]
    assert _groups(second) == teams[:GROUPS_PER_PAGE]
    # The groups move on; the users stay on their second page.
    both = client.get(DIRECTORY, _link(second, "groups-next")).content.decode()
    assert _users(both) == ordered[USERS_PER_PAGE : 2 * USERS_PER_PAGE]
    assert _groups(both) == teams[GROUPS_PER_PAGE : 2 * GROUPS_PER_PAGE]
    third = client.get(DIRECTORY, _link(both, "users-next")).content.decode()
    assert _users(third) == ordered[2 * USERS_PER_PAGE :] and "Page 3 of 3" in third
    assert _groups(third) == teams[GROUPS_PER_PAGE : 2 * GROUPS_PER_PAGE]
    # And back again.
    back = client.get(DIRECTORY, _link(third, "users-previous")).content.decode()
    assert _users(back) == ordered[USERS_PER_PAGE : 2 * USERS_PER_PAGE] and "Page 2 of 3" in back
    start = client.get(DIRECTORY, _link(back, "users-previous")).content.decode()
    assert _users(start) == ordered[:USERS_PER_PAGE] and 'data-testid="users-previous"' not in start
    assert _groups(start) == teams[GROUPS_PER_PAGE : 2 * GROUPS_PER_PAGE]


def test_a_row_action_returns_to_the_page_it_was_taken_from(login, admin, contoso):
    _add(contoso, 2 * USERS_PER_PAGE, 0, 0)
    client = login(admin)
    ordered = _ordered_users(contoso)
    first = client.get(DIRECTORY).content.decode()
    cursor = _link(first, "users-next")
    second = client.get(DIRECTORY, cursor).content.decode()
    assert f'name="after" value="{html.escape(cursor["after"])}"' in second
    shown = DirectoryUser.objects.get(pk=ordered[USERS_PER_PAGE])
    response = client.post(
        reverse("environment:directory_user_enabled", args=[shown.pk]), {**cursor, "enabled": "false"}
    )
    assert response.status_code == 302
    landed = client.get(response["Location"]).content.decode()
    assert _users(landed) == ordered[USERS_PER_PAGE:]


def test_a_directory_longer_than_the_count_limit_says_more_than(login, admin, contoso, monkeypatch):
    from core import keyset

    monkeypatch.setattr(keyset, "COUNT_LIMIT", 20)
    _add(contoso, 60, 30, 0)
    body = login(admin).get(DIRECTORY).content.decode()
    assert "More than 20 users" in body and "More than 20 groups" in body
    assert "Page 1</span>" in body and "Page 1 of" not in body


def test_a_hand_edited_cursor_shows_the_first_page(login, admin, contoso):
    _add(contoso, 2 * USERS_PER_PAGE, 2 * GROUPS_PER_PAGE, 0)
    client = login(admin)
    first = client.get(DIRECTORY).content.decode()
    for params in [
        {"after": "nonsense", "gafter": "nonsense"},
        {"before": "Person~x", "gbefore": "~"},
        {"after": "~" + "9" * 30, "gpage": "-1"},
        {"page": "9", "gpage": "9"},
        # Well-formed, past either end of the lists.
        {"after": "zzzz~1", "page": "2", "gafter": "zzzz~1", "gpage": "2"},
        {"before": "AAAA~1", "page": "2", "gbefore": "AAAA~1", "gpage": "2"},
    ]:
        response = client.get(DIRECTORY, params)
        body = response.content.decode()
        assert response.status_code == 200, params
        assert _users(body) == _users(first) and _groups(body) == _groups(first), params
        assert "Previous" not in body, params
