"""Text the database can't take (NUL characters, broken UTF-8) is refused with a 400 in one place,
defender_portal/input_guard.py, before any view, form or session reads it: never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    ["/environment/devices/", "/environment/directory/", "/provider/onboarding/"],
)
def test_nul_in_a_search_is_a_400_not_a_500(url, login, admin, sdm):
    """Before: these three returned 500 (psycopg.DataError: PostgreSQL text fields cannot contain NUL)."""
    client = login(sdm if url.startswith("/provider/") else admin)
    assert client.get(url, {"q": "contoso"}).status_code == 200
    response = client.get(url + "?q=%00")
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()
    assert client.get(url, {"q": "con\x00toso"}).status_code == 400


@pytest.mark.parametrize("query", ["q=%FF", "q=%C3%28", "q=%ED%A0%80", "%FF=1"])
def test_invalid_utf8_in_the_query_string_is_a_400(query, login, admin):
    response = login(admin).get("/environment/devices/?" + query)
    assert response.status_code == 400
    assert "UTF-8" in response.content.decode()


def test_raw_invalid_utf8_bytes_in_the_query_string_are_a_400(login, admin):
    # WSGI hands the raw bytes over as ISO-8859-1 text.
    response = login(admin).get("/environment/devices/", QUERY_STRING=b"q=\xff\xfe".decode("latin-1"))
    assert response.status_code == 400


def test_well_formed_unicode_passes(login, admin):
    assert login(admin).get("/environment/directory/", {"q": "Łukasz Søren Yılmaz 🙂"}).status_code == 200


def test_nul_in_a_form_field_is_a_400(login, admin):
    client = login(admin)
    url = "/settings/defender-experts/notification-contacts/add/"
    assert client.post(url, {"q": "a\x00b"}).status_code == 400  # multipart, as the test client sends
    urlencoded = client.post(url, "q=a%00b", content_type="application/x-www-form-urlencoded")
    assert urlencoded.status_code == 400
    broken = client.post(url, b"q=%FF", content_type="application/x-www-form-urlencoded")
    assert broken.status_code == 400
    raw = client.post(url, b"q=\xff", content_type="application/x-www-form-urlencoded")
    assert raw.status_code == 400


def test_nul_in_a_header_or_cookie_is_a_400(login, admin):
    client = login(admin)
    assert client.get("/environment/devices/", HTTP_X_FORWARDED_FOR="10.0.0.1\x00").status_code == 400
    assert client.get("/environment/devices/", HTTP_HX_CURRENT_URL="http://x/\x00").status_code == 400
    assert client.get("/environment/devices/", HTTP_USER_AGENT="\xff\xfe").status_code == 400
    # A quoted cookie's octal escape decodes to NUL; the session store would query the database with it.
    assert client.get("/environment/devices/", HTTP_COOKIE='sessionid="\\000abc"').status_code == 400
    assert client.get("/environment/devices/").status_code == 200  # the real session still works


def test_nul_in_the_path_is_not_found(login, admin):
    # A NUL where an id goes is a malformed id: 404, without reading the session.
    response = login(admin).get("/provider/access/%00/")
    assert response.status_code == 404
    assert "couldn't find that page" in response.content.decode()


def test_the_400_page_is_self_contained_and_says_why(client):
    response = client.get("/sign-in/?next=%00")
    assert response.status_code == 400
    html = response.content.decode()
    assert "<h1>The portal can&#x27;t accept this request</h1>" in html or "can't accept this request" in html
    assert "the query string contains a NUL character" in html
    assert "style=" not in html and "<script" not in html


# --- Every URL the portal serves ---------------------------------------------------------

CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _urls() -> Iterator[str]:
    def walk(patterns: list, prefix: str) -> Iterator[str]:
        for pattern in patterns:
            text = str(pattern.pattern)
            if text.startswith("^"):
                continue  # the admin's regex catch-alls
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + text)
            elif isinstance(pattern, URLPattern):
                yield "/" + CONVERTER.sub(lambda m: "step" if m.group(1) == "slug" else "1", prefix + text)

    yield from walk(get_resolver().url_patterns, "")


ALL_URLS = sorted(set(_urls()) - {"/healthz/", "/readyz/"})


def test_the_sweep_covers_every_area():
    areas = {url.split("/")[1] for url in ALL_URLS}
    assert {"settings", "environment", "provider", "django-admin", "sign-in", "account"} <= areas
    assert len(ALL_URLS) > 80


@pytest.mark.parametrize("who", ["admin", "sdm", "anonymous"])
def test_no_url_answers_nul_or_broken_utf8_with_anything_but_400(who, client, admin, sdm):
    if who != "anonymous":
        client.force_login({"admin": admin, "sdm": sdm}[who])
    failures = []
    for url in ALL_URLS:
        for method, kwargs in (
            ("get", {"path": url + "?q=%00&page=1"}),
            ("get", {"path": url + "?q=%FF"}),
            ("post", {"path": url, "data": {"q": "x\x00", "name": "\x00", "csrfmiddlewaretoken": "x"}}),
            (
                "post",
                {"path": url, "data": "q=%00&version=1", "content_type": "application/x-www-form-urlencoded"},
            ),
        ):
            status = getattr(client, method)(**kwargs).status_code
            if status != 400:
                failures.append((method, kwargs["path"], status))
    assert failures == []
