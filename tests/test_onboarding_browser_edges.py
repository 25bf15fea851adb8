"""The guide's edges in a real browser: bad links, read-only, the skip warning,
Back/reload, and the guide without JavaScript."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import expect

from onboarding.links import token_for_nonce
from onboarding.services import invitation_send
from permissions.selectors import access_levels_state
from tests.conftest import complete_mfa
from tests.test_onboarding_browser import LINK_RE, STEP_URL

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def invited(contoso: Any, sdm: Any, admin: Any, settings: Any, live_server: Any) -> Any:
    settings.PORTAL_BASE_URL = live_server.url
    invitation_send(tenant=contoso, acting_user=sdm)
    return contoso


def test_expired_link_page(page, live_server, invited, settings, axe_check, screenshot_dir):
    link = LINK_RE.search(mail.outbox[-1].body).group(0)
    settings.ONBOARDING_LINK_MAX_AGE = 1
    time.sleep(2.1)
    page.goto(link)
    expect(page.get_by_role("heading", name="This link has expired")).to_be_visible()
    expect(page.get_by_text("Ask your service delivery manager to resend the welcome email.")).to_be_visible()
    expect(page.get_by_role("link", name="Go to Get started")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/onboarding-link-expired.png", full_page=True)


def test_tampered_link_page(page, live_server, invited, axe_check, screenshot_dir):
    page.goto(f"{live_server.url}/settings/defender-experts/get-started/invitation/{token_for_nonce('x')[:-4]}AAAA/")
    expect(page.get_by_role("heading", name="This link isn't valid")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/onboarding-link-tampered.png", full_page=True)


def test_reader_sees_the_guide_read_only(page, live_server, invited, reader, browser_login, axe_check, screenshot_dir):
    browser_login(reader)
    page.goto(f"{live_server.url}/settings/defender-experts/get-started/")
    expect(page).to_have_url(re.compile(STEP_URL.format("permissions")))
    expect(page.get_by_test_id("read-only")).to_have_text(
        re.compile("Only a Global Administrator or a Security Administrator can complete this guide.")
    )
    expect(page.get_by_role("checkbox", name=re.compile("Respond directly"))).to_be_disabled()
    expect(page.get_by_role("button", name="Next")).to_have_count(0)
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/onboarding-read-only.png", full_page=True)


def test_skip_warning_then_confirm(page, live_server, invited, admin, browser_login, axe_check, screenshot_dir):
    browser_login(admin)
    page.goto(f"{live_server.url}/settings/defender-experts/get-started/")
    respond = page.get_by_role("checkbox", name=re.compile("Respond directly"))
    respond.check()
    hint = page.locator("[data-skip-hint]")
    expect(hint).to_be_hidden()  # the live hint follows the checkbox
    respond.uncheck()
    expect(hint).to_be_visible()
    page.get_by_role("button", name="Next", exact=True).click()
    warning = page.get_by_test_id("skip-warning")
    expect(warning).to_contain_text(
        "If you skip providing additional permissions, our experts won't be able to take certain response actions "
        "to secure your organization."
    )
    expect(page).to_have_url(re.compile(STEP_URL.format("permissions")))
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/onboarding-skip-warning.png", full_page=True)
    page.get_by_role("button", name="Continue without additional permissions").click()
    expect(page).to_have_url(re.compile(STEP_URL.format("incident-contact")))
    state = access_levels_state(tenant=invited)
    assert state.investigate and not state.respond


def test_browser_back_and_reload_keep_the_admin_where_they_were(page, live_server, invited, admin, browser_login):
    browser_login(admin)
    page.goto(f"{live_server.url}/settings/defender-experts/get-started/")
    page.get_by_role("checkbox", name=re.compile("Respond directly")).check()
    page.get_by_role("button", name="Next", exact=True).click()
    expect(page).to_have_url(re.compile(STEP_URL.format("incident-contact")))
    expect(page.get_by_role("heading", name="Incident contact", level=2)).to_be_focused()
    expect(page).to_have_title(re.compile(r"^Incident contact · Get started"))
    page.reload()
    expect(page.get_by_role("heading", name="Incident contact", level=2)).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(STEP_URL.format("permissions")))
    expect(page.get_by_role("heading", name="Permissions", level=2)).to_be_visible()
    # Progress stays on the server: the stepper still shows Permissions done.
    expect(page.get_by_test_id("step-incident-contact")).to_have_attribute("data-state", "not_started")
    page.get_by_role("link", name="Incident contact").click()
    expect(page).to_have_url(re.compile(STEP_URL.format("incident-contact")))
    page.get_by_role("link", name="Back").click()
    expect(page).to_have_url(re.compile(STEP_URL.format("permissions")))
    expect(page.get_by_role("checkbox", name=re.compile("Respond directly"))).to_be_checked()


def test_the_guide_works_without_javascript(browser, live_server, invited, admin):
    from tests import factories

    factories.directory_user(invited, "Adele Vance")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill("Correct-Horse-Battery-9")
    page.get_by_role("button", name="Sign in").click()
    complete_mfa(page, admin)
    page.goto(f"{live_server.url}/settings/defender-experts/get-started/")
    page.get_by_role("checkbox", name=re.compile("Respond directly")).check()
    page.get_by_role("button", name="Next", exact=True).click()
    expect(page).to_have_url(re.compile(STEP_URL.format("incident-contact")))
    # The picker is a plain GET form: search, then Add on the results page, back to the step.
    page.get_by_role("searchbox", name="Contact person or team").fill("Adele")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/notification-contacts/search/"))
    page.get_by_role("button", name="Add Adele Vance").click()
    expect(page).to_have_url(re.compile(STEP_URL.format("incident-contact")))
    expect(page.get_by_test_id("contact-list")).to_contain_text("Adele Vance")
    page.get_by_role("button", name="Next", exact=True).click()
    expect(page).to_have_url(re.compile(STEP_URL.format("service-review-contact")))
    page.get_by_role("link", name="Back").click()
    expect(page).to_have_url(re.compile(STEP_URL.format("incident-contact")))
    context.close()


def test_landing_page(page, live_server, invited, admin, browser_login, axe_check, screenshot_dir):
    browser_login(admin)
    page.goto(f"{live_server.url}/settings/defender-experts/")
    expect(page.get_by_role("heading", name="Defender Experts", level=1)).to_be_visible()
    get_started = page.get_by_role("link", name="Get started", exact=True).last
    expect(get_started).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/onboarding-landing.png", full_page=True)
    get_started.click()
    expect(page).to_have_url(re.compile(STEP_URL.format("permissions")))


def test_refusal_page_for_another_tenants_member(
    page, live_server, invited, outsider, browser_login, axe_check, screenshot_dir
):
    link = LINK_RE.search(mail.outbox[-1].body).group(0)
    browser_login(outsider)
    page.goto(link)
    expect(page.get_by_role("heading", name="This link isn't for your account")).to_be_visible()
    expect(page.get_by_text("Contoso")).to_have_count(0)
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/onboarding-link-refused.png", full_page=True)


def test_guide_before_the_invitation(page, live_server, fabrikam, outsider, browser_login, axe_check):
    browser_login(outsider)
    page.goto(f"{live_server.url}/settings/defender-experts/get-started/")
    expect(page.get_by_test_id("unavailable")).to_contain_text("welcome email")
    axe_check(page)


def test_console_with_progress_and_readiness(
    page, live_server, invited, sdm, admin, fabrikam, browser_login, axe_check, screenshot_dir
):
    from django.utils import timezone

    from onboarding.services import guide_start
    from readiness.models import ReadinessState

    guide_start(tenant=invited, acting_user=admin)
    ReadinessState.objects.create(
        tenant=invited, last_refreshed_at=timezone.now(), actions_total=17, actions_completed=5, is_ready=False
    )
    browser_login(sdm)
    page.goto(f"{live_server.url}/provider/onboarding/")
    row = page.get_by_test_id(f"tenant-{invited.pk}")
    expect(row.get_by_test_id("phase")).to_have_text("Setting up")
    expect(row).to_contain_text("Step 1 of 5: Permissions")
    expect(row.get_by_test_id("readiness")).to_contain_text("5 of 17")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/onboarding-console-progress.png", full_page=True)


def test_removed_access_is_shown_and_restored_from_the_guide_by_keyboard(
    page, live_server, invited, admin, browser_login, axe_check, screenshot_dir
):
    """Service provider access removed on the Permissions page: the guide shows
    it as it is (nothing ticked), says who removed it, and restores it only
    through a button that says so."""
    from permissions.services import access_levels_set, provider_access_remove
    from tests.test_onboarding_browser import tab_to

    access_levels_set(
        tenant=invited,
        acting_user=admin,
        investigate=True,
        respond=False,
        expected_version=access_levels_state(tenant=invited).version,
    )
    provider_access_remove(
        tenant=invited, acting_user=admin, expected_version=access_levels_state(tenant=invited).version
    )
    browser_login(admin)
    page.goto(f"{live_server.url}/settings/defender-experts/")
    expect(page.get_by_test_id("access-health-banner")).to_contain_text("Service provider access was removed")
    page.goto(f"{live_server.url}/settings/defender-experts/get-started/")
    expect(page.get_by_test_id("access-removed")).to_contain_text(f"removed by {admin.display_name}")
    investigate = page.get_by_role("checkbox", name=re.compile("Investigate incidents"))
    expect(investigate).not_to_be_checked()
    expect(page.get_by_role("button", name="Next", exact=True)).to_have_count(0)
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/onboarding-access-removed.png", full_page=True)
    tab_to(page, investigate)
    page.keyboard.press("Space")
    tab_to(page, page.get_by_role("button", name="Restore access and continue"))
    page.keyboard.press("Enter")
    confirm = page.get_by_role("button", name="Continue without additional permissions")
    expect(confirm).to_be_focused()  # the question the step asks gets the focus
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(STEP_URL.format("incident-contact")))
    expect(page.get_by_text("Service provider access restored.")).to_be_visible()
    state = access_levels_state(tenant=invited)
    assert state.provider_access_granted and state.investigate and not state.respond
