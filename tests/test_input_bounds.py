"""Out-of-range input is a form error or a 404, never a 500.

One validated parser per kind (tenancy/bounds.py): dates, integers and ids.
The sweep sends out-of-range and malformed values in every query parameter
any view reads, to every page of the portal and of the provider area.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from audit.models import AuditEvent
from tenancy.bounds import MAX_DATE, MAX_ID, BoundedDateField, parse_date, parse_id, parse_int
from tenancy.forms import SwitchTenantForm
from tests import factories

pytestmark = pytest.mark.django_db

LOG = reverse("audit:log")
EXPORT = reverse("audit:export")
HUGE = "99999999999999999999"


def test_the_parsers_refuse_what_the_database_or_date_arithmetic_cannot_carry():
    assert parse_date("9999-12-31") is None and parse_date("0001-01-01") is None
    assert parse_date("2026-02-30") is None and parse_date("2026-12-01\x00") is None
    assert parse_date("2026-12-01") == date(2026, 12, 1) and parse_date(MAX_DATE.isoformat()) == MAX_DATE
    assert parse_int(HUGE) is None and parse_int("1e3") is None and parse_int("１２") is None
    assert parse_int("-5") == -5 and parse_int(" 42 ") == 42 and parse_int("9" * 5000) is None
    assert parse_id("0") is None and parse_id("-1") is None and parse_id(str(MAX_ID + 1)) is None
    assert parse_id(str(MAX_ID)) == MAX_ID and parse_id(True) is None
    with pytest.raises(Exception, match="between"):
        BoundedDateField().clean("9999-12-31")


def test_audit_log_to_9999_12_31_is_a_form_error_not_a_500(login, admin):
    """Finding 3: OverflowError from date_to + timedelta(days=1)."""
    client = login(admin)
    response = client.get(LOG, {"to": "9999-12-31"})
    assert response.status_code == 200
    assert b"Enter a date between 1900-01-01 and 2999-12-31." in response.content
    response = client.get(LOG, {"from": "0001-01-01", "to": "2026-01-01"})
    assert response.status_code == 200 and b"Enter a date between" in response.content


def test_audit_export_to_9999_12_31_is_refused_with_the_reason(login, admin):
    response = login(admin).get(EXPORT, {"to": "9999-12-31"})
    assert response.status_code == 400
    assert "Enter a date between" in response.content.decode()


def test_switch_organization_with_a_20_digit_id_is_refused_not_a_500(login, admin, contoso):
    """Finding 3: an integer overflow (on SQLite) from tenant=99999999999999999999."""
    assert not SwitchTenantForm({"tenant": HUGE}).is_valid()
    client = login(admin)
    response = client.post(reverse("switch_tenant"), {"tenant": HUGE}, follow=True)
    assert response.status_code == 200
    assert b"not a member of that organisation" in response.content
    assert client.session.get("active_tenant_id") is None


def _query_parameter_names() -> set[str]:
    """Every query parameter a view reads, found in the source (so new ones are swept too)."""
    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"""(?:GET|params)(?:\.get|\.getlist)?\(\s*["'](\w+)["']|params\[["'](\w+)["']\]""")
    names: set[str] = set()
    for app in ("audit", "contacts", "environment", "onboarding", "outbox", "permissions", "readiness", "tenancy"):
        for path in (root / app).rglob("*.py"):
            for match in pattern.finditer(path.read_text()):
                names.add(match.group(1) or match.group(2))
    # Form fields read from the query string.
    return names | {"from", "to", "category", "action", "actor", "page", "gpage", "latest"}


BAD_VALUES = ["9999-12-31", "0000-00-00", HUGE, "-" + HUGE, "-1", "0", "1e400", "NaN", "2026-13-45"]


def _get_pages(objects: dict[str, Any]) -> list[str]:
    """Every GET page of the portal and the provider area, with real ids for its arguments."""
    urls: list[str] = []

    def walk(patterns: list[Any], namespace: str, outer: list[str]) -> None:
        for p in patterns:
            params = [*outer, *p.pattern.regex.groupindex]  # path converters and regex groups alike
            if isinstance(p, URLResolver):
                if "django-admin" in str(p.pattern):
                    continue
                walk(p.url_patterns, f"{namespace}{p.namespace}:" if p.namespace else namespace, params)
            elif isinstance(p, URLPattern) and p.name and all(name in objects for name in params):
                urls.append(reverse(f"{namespace}{p.name}", kwargs={n: objects[n] for n in params}))

    walk(get_resolver().url_patterns, "", [])
    return sorted(set(urls))


def test_out_of_range_values_in_every_query_parameter_never_give_a_500(client, admin, sdm, contoso):
    dc = factories.domain_controller(contoso)
    objects = {"pk": dc.pk, "tenant_id": contoso.pk, "state": "onboarded", "step": "permissions"}
    names = _query_parameter_names()
    assert {"to", "from", "group", "page", "tenant", "grant"} <= names
    pages = _get_pages(objects)
    assert len(pages) > 25
    requests = 0
    for user in (admin, sdm):
        client.force_login(user)
        for url in pages:
            for value in BAD_VALUES:
                response = client.get(url, dict.fromkeys(names, value))
                assert response.status_code < 500, (user.email, url, value, response.status_code)
                requests += 1
    assert requests == 2 * len(pages) * len(BAD_VALUES)
    # Only sign-ins and the expert opening the tenant are recorded: nothing changed.
    assert not AuditEvent.objects.exclude(action__startswith="auth.").exclude(action="experts.session_started").exists()
