"""The portal shell over HTTP: theme and navigation preferences, favicon, compression, the tab title."""

from __future__ import annotations

import gzip

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_theme_choice_is_remembered_and_rendered_on_html(login, admin):
    client = login(admin)
    response = client.post("/account/theme/", {"theme": "dark", "next": "/settings/defender-experts/"})
    assert response.status_code == 302
    assert response["Location"] == "/settings/defender-experts/"
    assert response.cookies["portal_theme"].value == "dark"
    assert response.cookies["portal_theme"]["httponly"]
    page = client.get("/settings/defender-experts/")
    assert b'<html lang="en" data-theme="dark">' in page.content
    assert b'value="dark" class="menu-item" aria-pressed="true"' in page.content


def test_system_theme_renders_no_theme_attribute(login, admin):
    client = login(admin)
    client.post("/account/theme/", {"theme": "system"})
    assert b'<html lang="en">' in client.get("/settings/defender-experts/").content


def test_an_unknown_theme_is_refused_and_a_forged_cookie_ignored(login, admin):
    client = login(admin)
    assert client.post("/account/theme/", {"theme": "neon"}).status_code == 400
    client.cookies["portal_theme"] = '"><script>'
    assert b'<html lang="en">' in client.get("/settings/defender-experts/").content


def test_theme_redirect_stays_on_this_site(login, admin):
    response = login(admin).post("/account/theme/", {"theme": "light", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_theme_needs_post(client):
    assert client.get("/account/theme/").status_code == 405


def test_navigation_collapse_is_remembered(login, admin):
    client = login(admin)
    response = client.post("/account/navigation/", {"nav": "collapsed", "next": "/settings/defender-experts/"})
    assert response.cookies["portal_nav"].value == "collapsed"
    page = client.get("/settings/defender-experts/").content
    assert b'data-nav="collapsed"' in page
    assert b'name="nav" value="expanded"' in page
    assert client.post("/account/navigation/", {"nav": "sideways"}).status_code == 400


def test_favicon_ico_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith(".ico")
    ico = finders.find("icons/favicon.ico")
    assert ico is not None
    with open(ico, "rb") as f:
        assert f.read(4) == b"\x00\x00\x01\x00"  # an ICO header


def test_pages_link_the_icons_and_the_manifest(client):
    html = client.get("/sign-in/").content.decode()
    for name in ["favicon.svg", "favicon.ico", "apple-touch-icon.png", "site.webmanifest"]:
        assert name in html
        assert finders.find(f"icons/{name}") is not None


def test_html_is_gzipped_when_the_browser_accepts_it(login, admin):
    client = login(admin)
    plain = client.get("/settings/defender-experts/")
    assert "Content-Encoding" not in plain
    response = client.get("/settings/defender-experts/", headers={"accept-encoding": "gzip"})
    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    body = gzip.decompress(response.content)
    assert b"Defender Experts" in body
    assert len(response.content) < len(body) / 3


def test_tab_title_names_the_page_and_the_tenant(login, admin):
    html = login(admin).get("/settings/defender-experts/permissions/").content.decode()
    assert "<title>Permissions – Contoso – Microsoft Defender</title>" in html


def test_the_user_menu_shows_initials_and_the_signed_in_user(login, admin):
    from ui.context_processors import initials

    html = login(admin).get("/settings/defender-experts/").content.decode()
    assert f'<span class="avatar" aria-hidden="true">{initials(admin.display_name)}</span>' in html
    assert "Sign out" in html


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Adele Vance", "AV"), ("Ava", "A"), ("admin@contoso.example", "A"), ("Jean-Luc de la Tour", "JT"), ("", "?")],
)
def test_initials(name, expected):
    from ui.context_processors import initials

    assert initials(name) == expected


def test_the_navigation_marks_areas_outside_the_emulation(login, admin):
    html = login(admin).get("/settings/defender-experts/").content.decode()
    assert html.count("(not part of this emulation)") == 11
    assert 'href="/settings/defender-experts/permissions/"' in html


def test_pages_have_no_inline_style_or_script(login, admin):
    html = login(admin).get("/settings/defender-experts/").content.decode()
    assert " style=" not in html
    assert "<script>" not in html
    assert " onclick=" not in html
