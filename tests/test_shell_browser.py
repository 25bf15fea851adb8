"""The shell in a real browser: sign in, header, navigation, sign out, accessibility."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import complete_mfa

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_page_is_accessible(page, live_server, axe_check, screenshot_dir):
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/sign-in/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/shell-sign-in.png", full_page=True)


def test_admin_signs_in_by_keyboard_and_sees_the_shell(page, live_server, admin, axe_check, screenshot_dir):
    page.goto(f"{live_server.url}/sign-in/")
    page.keyboard.type(admin.email)  # the email field has focus on load
    page.keyboard.press("Tab")
    page.keyboard.type("Correct-Horse-Battery-9")
    page.keyboard.press("Enter")
    complete_mfa(page, admin, keyboard=True)
    expect(page).to_have_url(re.compile(r"/settings/defender-experts/$"))
    expect(page.get_by_test_id("tenant-name")).to_have_text("Contoso")
    nav = page.get_by_role("navigation", name="Portal")
    for name in ["Defender Experts", "Get started", "Permissions", "Notification contacts", "Service status"]:
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/shell-landing.png", full_page=True)
    page.get_by_role("button", name=re.compile("^Account manager for")).click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in/"))


def test_wrong_password_shows_an_error_in_the_page(page, live_server, admin):
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("don't match an account")
