"""Multi-factor sign-in in the browser: enrol an authenticator app, sign in with
its code, use a recovery code once (a second use is refused), and enrol and use
a passkey with Chromium's virtual authenticator (CDP WebAuthn)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tenancy.models import TenantRole
from tests import factories
from tests.conftest import complete_mfa, fresh_totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _password_step(page: Page, live_server: Any, email: str) -> None:
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name=re.compile("^Account manager for")).click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in/"))


def _confirm_password(page: Page) -> None:
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()


def _code_step(page: Page, code: str) -> None:
    expect(page.get_by_role("heading", name="Verify your identity")).to_be_visible()
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_load_state()


def test_enrol_totp_sign_in_with_it_use_a_recovery_code_once(
    page: Page, live_server: Any, contoso: Any, axe_check: Any, screenshot_dir: str
) -> None:
    admin = factories.member(contoso, TenantRole.GLOBAL_ADMINISTRATOR, "mfa-admin@contoso.example", mfa=False)
    _password_step(page, live_server, admin.email)
    # The role requires a second factor: the guided enrolment opens first.
    expect(page).to_have_url(re.compile(r"/account/two-factor/$"))
    expect(page.get_by_test_id("mfa-required")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/mfa-1-enrolment.png", full_page=True)
    page.get_by_test_id("set-up-totp").click()
    # Changing sign-in methods is sensitive: the password is asked for once more.
    _confirm_password(page)
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/mfa-2-totp.png", full_page=True)
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    page.get_by_label("Code").fill(fresh_totp_code(admin, secret))
    page.get_by_role("button", name="Activate").click()
    # Recovery codes come with the app.
    expect(page.get_by_role("heading", name="Recovery codes")).to_be_visible()
    codes = [c.strip() for c in page.get_by_test_id("recovery-codes").locator("code").all_inner_texts()]
    assert len(codes) == 10
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/mfa-3-recovery-codes.png", full_page=True)
    page.get_by_role("link", name="Done").click()
    page.goto(f"{live_server.url}/settings/defender-experts/")
    expect(page.get_by_test_id("tenant-name")).to_have_text("Contoso")
    _sign_out(page)

    # Sign in with the app's code.
    _password_step(page, live_server, admin.email)
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/mfa-4-code-step.png", full_page=True)
    _code_step(page, fresh_totp_code(admin, secret))
    expect(page).to_have_url(re.compile(r"/settings/defender-experts/$"))
    _sign_out(page)

    # Lost the phone: a recovery code works once...
    _password_step(page, live_server, admin.email)
    _code_step(page, codes[0])
    expect(page).to_have_url(re.compile(r"/settings/defender-experts/$"))
    _sign_out(page)
    # ... and is refused the second time.
    _password_step(page, live_server, admin.email)
    _code_step(page, codes[0])
    expect(page.get_by_role("alert")).to_contain_text("Incorrect code")
    expect(page).to_have_url(re.compile(r"/account/two-factor/authenticate/"))


def test_a_passkey_is_enrolled_and_used_with_a_virtual_authenticator(
    page: Page, live_server: Any, admin: Any, axe_check: Any, screenshot_dir: str
) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    _password_step(page, live_server, admin.email)
    complete_mfa(page, admin)
    page.goto(f"{live_server.url}/account/two-factor/")
    page.get_by_test_id("add-passkey").click()
    _confirm_password(page)
    expect(page.get_by_role("heading", name="Add a passkey")).to_be_visible()
    axe_check(page)
    page.get_by_label("Name").fill("Test laptop")
    page.get_by_test_id("create-passkey").click()
    # The script submits the form once the authenticator answers: wait for that page, not just this one's load.
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    page.goto(f"{live_server.url}/account/two-factor/webauthn/")
    expect(page.get_by_role("cell", name="Test laptop")).to_be_visible()
    page.screenshot(path=f"{screenshot_dir}/mfa-5-passkeys.png", full_page=True)
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator["authenticatorId"]})
    assert len(credentials["credentials"]) == 1
    page.goto(f"{live_server.url}/settings/defender-experts/")
    _sign_out(page)

    # Sign in with the passkey as the second step.
    _password_step(page, live_server, admin.email)
    expect(page.get_by_role("heading", name="Verify your identity")).to_be_visible()
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(re.compile(r"/settings/defender-experts/$"))
    expect(page.get_by_test_id("tenant-name")).to_have_text("Contoso")


def test_the_respond_re_prompt_accepts_a_passkey(
    page: Page, live_server: Any, admin: Any, contoso: Any, axe_check: Any, screenshot_dir: str
) -> None:
    """Granting Respond asks for the password and a second factor; a user with a passkey may use it."""
    from django.contrib.sessions.models import Session

    from audit.models import AuditEvent
    from permissions.selectors import access_levels_state
    from permissions.services import access_levels_set

    access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=1)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    _password_step(page, live_server, admin.email)
    complete_mfa(page, admin)
    page.goto(f"{live_server.url}/account/two-factor/")
    page.get_by_test_id("add-passkey").click()
    _confirm_password(page)
    page.get_by_label("Name").fill("Test laptop")
    page.get_by_test_id("create-passkey").click()
    # The script submits the form once the authenticator answers: wait for that page, not just this one's load.
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    assert AuditEvent.objects.filter(action="auth.factor_added", tenant=contoso, actor=admin).exists()
    # The password proof is older than the re-prompt window.
    for s in Session.objects.all():
        data = s.get_decoded()
        data["auth_time"] = data.get("auth_time", 0) - 3600
        s.session_data = Session.objects.encode(data)
        s.save()

    page.goto(f"{live_server.url}/settings/defender-experts/permissions/")
    page.get_by_role("switch", name="Respond directly to active threats").check()
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/mfa-6-reprompt-passkey.png", full_page=True)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Use a passkey").click()
    # The change the prompt was for is made at once.
    expect(page.get_by_text("Access levels saved.")).to_be_visible()
    expect(page.get_by_role("switch", name="Respond directly to active threats")).to_be_checked()
    assert access_levels_state(tenant=contoso).respond
    assert not AuditEvent.objects.filter(action="auth.sign_in_failed").exists()
