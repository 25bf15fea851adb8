"""The whole onboarding path in headless Chromium: invite -> email -> link ->
sign in -> five steps -> Preparing; by mouse and by keyboard alone, axe-clean."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from onboarding.models import GuideProgress
from permissions.selectors import access_levels_state
from tenancy.models import ServicePhase
from tests import factories
from tests.conftest import complete_mfa

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK_RE = re.compile(r"https?://[^\s\"<]+/get-started/invitation/[^\s\"<]+/")
# A step's URL; back from adding a contact it ends at the contact list (#added-heading).
STEP_URL = r"/settings/defender-experts/get-started/{}/(#[\w-]+)?$"


@pytest.fixture
def directory(contoso: Any) -> None:
    factories.directory_user(contoso, "Adele Vance", job_title="SOC lead")
    factories.directory_user(contoso, "Megan Bowen", job_title="CISO")


def sign_in(page: Page, user: Any, *, keyboard: bool = False) -> None:
    expect(page).to_have_url(re.compile(r"/sign-in/"))
    if keyboard:
        page.keyboard.type(user.email)  # the email field has focus on load
        page.keyboard.press("Tab")
        page.keyboard.type(factories.PASSWORD)
        page.keyboard.press("Enter")
    else:
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_role("button", name="Sign in").click()
    complete_mfa(page, user, keyboard=keyboard)


def invite_contoso(
    page: Page, live_server: Any, sdm: Any, shots: str, axe_check: Any, *, keyboard: bool = False
) -> str:
    """Provider staff invite Contoso; returns the welcome link from the captured email."""
    page.goto(f"{live_server.url}/provider/onboarding/")
    sign_in(page, sdm, keyboard=keyboard)
    expect(page.get_by_role("heading", name="Onboarding console")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{shots}/onboarding-0-console{'-kbd' if keyboard else ''}.png", full_page=True)
    row = page.get_by_test_id(re.compile(r"tenant-\d+")).filter(has_text="Contoso")
    expect(row.get_by_test_id("phase")).to_have_text("Not invited")
    if keyboard:
        tab_to(page, row.get_by_role("link", name=re.compile("Ready to onboard")))
        page.keyboard.press("Enter")
    else:
        row.get_by_role("link", name=re.compile("Ready to onboard")).click()
    expect(page.get_by_test_id("recipients")).to_contain_text("admin@contoso.example")
    axe_check(page)
    button = page.get_by_role("button", name=re.compile("Ready to onboard"))
    if keyboard:
        tab_to(page, button)
        page.keyboard.press("Enter")
    else:
        button.click()
    expect(page.get_by_text(re.compile("Sent the welcome email to admin@contoso.example"))).to_be_visible()
    expect(page.get_by_test_id("phase")).to_have_text("Invited")
    expect(page.get_by_test_id("invitations")).to_contain_text("admin@contoso.example")
    axe_check(page)
    page.screenshot(path=f"{shots}/onboarding-0-invited{'-kbd' if keyboard else ''}.png", full_page=True)
    # The welcome email, as Django's mail backend received it (HTML + text).
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["admin@contoso.example"]
    assert email.alternatives and email.alternatives[0][1] == "text/html"
    link = LINK_RE.search(email.body).group(0)
    assert link in email.alternatives[0][0]
    if not keyboard:
        preview = page.context.new_page()
        preview.set_content(email.alternatives[0][0])
        preview.screenshot(path=f"{shots}/onboarding-0-welcome-email.png", full_page=True)
        preview.close()
    page.get_by_role("button", name=re.compile("^Account manager for")).click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in/"))
    return link


def tab_to(page: Page, locator: Any, limit: int = 80) -> None:
    """Press Tab until ``locator`` has focus: only the keyboard moves the user."""
    handle = locator.element_handle()
    for _ in range(limit):
        if page.evaluate("el => document.activeElement === el", handle):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"could not reach {locator} with Tab")


def add_contact(page: Page, name: str, *, keyboard: bool) -> None:
    search = page.get_by_role("combobox", name="Contact person or team")
    if keyboard:
        tab_to(page, search)
        page.keyboard.type(name.split()[0])
        expect(page.get_by_role("option", name=re.compile(name))).to_be_visible()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        expect(page.get_by_text(f"Selected: {name}")).to_be_visible()
        tab_to(page, page.get_by_role("button", name="Add", exact=True))
        page.keyboard.press("Enter")
    else:
        search.fill(name.split()[0])
        page.get_by_role("option", name=re.compile(name)).click()
        expect(page.get_by_text(f"Selected: {name}")).to_be_visible()
        page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_test_id("contact-list")).to_contain_text(name)
    # Back on the step at the list that just grew, not at the top of the page.
    expect(page).to_have_url(re.compile(r"#added-heading$"))
    expect(page.get_by_role("heading", name=re.compile(r"contacts added$"))).to_be_focused()


def next_step(page: Page, *, keyboard: bool) -> None:
    button = page.get_by_role("button", name="Next", exact=True)
    if keyboard:
        tab_to(page, button)
        page.keyboard.press("Enter")
    else:
        button.click()


def walk_the_guide(page: Page, shots: str, axe_check: Any, *, keyboard: bool) -> None:
    suffix = "-kbd" if keyboard else ""
    # 0. The Get started page (the guide's overview), where the welcome link lands
    expect(page).to_have_url(re.compile(r"/get-started/overview/$"))
    expect(page.get_by_test_id("overview-steps")).to_contain_text("Exclusions")
    axe_check(page)
    if keyboard:
        tab_to(page, page.get_by_test_id("start-guide"))
        page.keyboard.press("Enter")
    else:
        page.get_by_test_id("start-guide").click()
    # 1. Permissions
    expect(page).to_have_url(re.compile(STEP_URL.format("permissions")))
    expect(page.get_by_role("heading", name="Permissions", level=2)).to_be_visible()
    expect(page.get_by_test_id("step-permissions")).to_have_attribute("data-state", "current")
    investigate = page.get_by_role("checkbox", name=re.compile("Investigate incidents and guide my responses"))
    respond = page.get_by_role("checkbox", name=re.compile("Respond directly to active threats"))
    expect(investigate).to_be_checked()
    expect(respond).not_to_be_checked()
    expect(page.get_by_text("Access level: Security Reader")).to_be_visible()
    expect(page.get_by_text("Access level: Security Operator")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{shots}/onboarding-1-permissions{suffix}.png", full_page=True)
    if keyboard:
        tab_to(page, respond)
        page.keyboard.press("Space")
    else:
        respond.check()
    expect(respond).to_be_checked()
    next_step(page, keyboard=keyboard)

    # 2. Incident contact (htmx swapped it in and pushed its URL)
    expect(page).to_have_url(re.compile(STEP_URL.format("incident-contact")))
    expect(page.get_by_role("heading", name="Incident contact", level=2)).to_be_visible()
    expect(page.get_by_test_id("step-permissions")).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("urgent-note")).to_contain_text(
        "Given the urgent nature of the communications, it is recommended to have someone available at all times."
    )
    add_contact(page, "Adele Vance", keyboard=keyboard)
    expect(page).to_have_url(re.compile(STEP_URL.format("incident-contact")))
    axe_check(page)
    page.screenshot(path=f"{shots}/onboarding-2-incident-contact{suffix}.png", full_page=True)
    next_step(page, keyboard=keyboard)

    # 3. Service review contact
    expect(page).to_have_url(re.compile(STEP_URL.format("service-review-contact")))
    expect(page.get_by_role("heading", name="Service review contact", level=2)).to_be_visible()
    add_contact(page, "Megan Bowen", keyboard=keyboard)
    axe_check(page)
    page.screenshot(path=f"{shots}/onboarding-3-service-review-contact{suffix}.png", full_page=True)
    next_step(page, keyboard=keyboard)

    # 4. Next steps
    expect(page).to_have_url(re.compile(STEP_URL.format("next-steps")))
    expect(page.get_by_role("heading", name="Next steps", level=2)).to_be_visible()
    expect(
        page.get_by_text("It can take up to 24 hours to get the latest status of your security settings.")
    ).to_be_visible()
    expect(page.get_by_test_id("service-status-link")).to_be_visible()
    # Next steps is the last step and carries Close (the seed: "Select Close to exit the settings step-by-step
    # guide"); the stepper has no separate Close step.
    expect(page.get_by_role("button", name="Next", exact=True)).to_have_count(0)
    expect(page.get_by_test_id("step-close")).to_have_count(0)
    summary = page.get_by_test_id("summary")
    expect(summary).to_contain_text("Respond directly to active threats")
    expect(summary).to_contain_text("Adele Vance")
    expect(summary).to_contain_text("Megan Bowen")
    axe_check(page)
    axe_check(page)
    page.screenshot(path=f"{shots}/onboarding-4-next-steps{suffix}.png", full_page=True)
    close = page.get_by_role("button", name="Close", exact=True)
    if keyboard:
        tab_to(page, close)
        page.keyboard.press("Enter")
    else:
        close.click()
    expect(page).to_have_url(re.compile(r"/settings/defender-experts/service-status/"))
    page.screenshot(path=f"{shots}/onboarding-5-service-status{suffix}.png", full_page=True)


def assert_preparing(contoso: Any, admin: Any) -> None:
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.PREPARING
    progress = GuideProgress.objects.get(tenant=contoso)
    assert progress.finished_by == admin
    state = access_levels_state(tenant=contoso)
    assert state.investigate and state.respond


def test_the_whole_onboarding_path(
    page, live_server, settings, sdm, contoso, admin, directory, axe_check, screenshot_dir
):
    settings.PORTAL_BASE_URL = live_server.url
    link = invite_contoso(page, live_server, sdm, screenshot_dir, axe_check)
    page.goto(link)
    sign_in(page, admin)
    walk_the_guide(page, screenshot_dir, axe_check, keyboard=False)
    assert_preparing(contoso, admin)


def test_the_whole_onboarding_path_by_keyboard_alone(
    page, live_server, settings, sdm, contoso, admin, directory, axe_check, screenshot_dir
):
    settings.PORTAL_BASE_URL = live_server.url
    link = invite_contoso(page, live_server, sdm, screenshot_dir, axe_check, keyboard=True)
    page.goto(link)
    sign_in(page, admin, keyboard=True)
    walk_the_guide(page, screenshot_dir, axe_check, keyboard=True)
    assert_preparing(contoso, admin)
