"""The Permissions page in a real browser: toggles with their warnings, removal, accessibility, screenshots."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from permissions.selectors import access_levels_state
from permissions.services import access_levels_set
from tests import factories
from tests.conftest import fresh_totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PATH = "/settings/defender-experts/permissions/"


def _setup(contoso, admin):
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=True,
        expected_version=1,
        recently_authenticated=True,
    )
    for name, count in (("Finance servers", 40), ("Domain controllers", 6), ("Executive laptops", 12)):
        factories.devices(contoso, count, group=factories.device_group(contoso, name))
    factories.devices(contoso, 120)


def test_toggles_show_their_warnings_and_the_effective_access_panel(
    page, live_server, browser_login, contoso, admin, axe_check, screenshot_dir
):
    _setup(contoso, admin)
    browser_login(admin)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"{live_server.url}{PATH}")
    expect(page.get_by_role("heading", name="Permissions", level=1)).to_be_visible()
    expect(page.get_by_test_id("access-health")).to_contain_text("Access health: Active")
    axe_check(page)

    # Turning off Respond directly to active threats opens the seed's IMPORTANT warning.
    respond = page.get_by_role("switch", name="Respond directly to active threats")
    expect(respond).to_be_checked()
    respond.uncheck()
    warning = page.get_by_test_id("levels-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(
        "If you skip providing additional permissions, our experts won't be able to take certain response actions"
    )
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/permissions-levels-warning.png", full_page=True)
    # Cancel puts the switch back; nothing was saved.
    warning.get_by_role("link", name="Cancel").click()
    expect(warning).to_be_hidden()
    expect(respond).to_be_checked()
    respond.uncheck()
    warning.get_by_role("button", name="Turn off access").click()
    expect(page.get_by_test_id("respond-status")).to_contain_text("Off")
    assert not access_levels_state(tenant=contoso).respond

    # Turning off Access security data from all devices lists the groups out of reach. The switch sits under the
    # access levels, in their form, saved by the same Save (the seed: "under the access levels").
    levels_form = page.locator("#access-levels form")
    switch = levels_form.get_by_role("switch", name=re.compile("Access security data from all devices"))
    expect(switch).to_have_count(1)
    expect(page.locator("#all-devices-title")).to_have_count(0)
    switch.uncheck()
    devices_warning = page.get_by_test_id("all-devices-warning")
    expect(devices_warning).to_be_visible()
    expect(page.get_by_test_id("levels-submit")).to_be_hidden()
    # Cancel puts the switch back and the Save returns; nothing was saved.
    devices_warning.get_by_role("link", name="Cancel").click()
    expect(devices_warning).to_be_hidden()
    expect(switch).to_be_checked()
    expect(page.get_by_test_id("levels-submit")).to_be_visible()
    switch.uncheck()
    devices_warning = page.get_by_test_id("all-devices-warning")
    expect(devices_warning).to_be_visible()
    expect(devices_warning).to_contain_text("won't be able to investigate incidents involving devices that belong to")
    expect(devices_warning.get_by_test_id("out-of-reach-count")).to_have_text("58 devices")
    expect(devices_warning).to_contain_text("Finance servers")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/permissions-all-devices-warning.png", full_page=True)
    devices_warning.get_by_role("button", name="Turn off").click()
    expect(page.get_by_test_id("all-devices-state")).to_have_text("Off")

    panel = page.locator("#effective-access")
    expect(panel.locator("[data-item='investigate_devices']")).to_contain_text("Limited")
    expect(panel.locator("[data-item='response_actions']")).to_contain_text("Not allowed")
    panel.get_by_text("By device group").first.click()
    expect(panel).to_contain_text("Finance servers (40 devices)")
    axe_check(page)
    panel.screenshot(path=f"{screenshot_dir}/permissions-effective-access.png")
    page.screenshot(path=f"{screenshot_dir}/permissions-page.png", full_page=True)
    assert not access_levels_state(tenant=contoso).all_devices


def test_removal_is_confirmed_in_a_dialog_and_access_can_be_restored(
    page, live_server, browser_login, contoso, admin, axe_check, screenshot_dir
):
    _setup(contoso, admin)
    browser_login(admin)
    page.goto(f"{live_server.url}{PATH}")
    page.get_by_role("link", name="Remove service provider access").click()
    dialog = page.get_by_role("dialog", name="Remove service provider access?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Our experts' monitoring and response stop immediately.")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/permissions-remove-dialog.png")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert access_levels_state(tenant=contoso).provider_access_granted

    # By keyboard: Enter opens it with the focus on the safe choice, Escape closes it.
    opener = page.get_by_role("link", name="Remove service provider access")
    opener.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    assert access_levels_state(tenant=contoso).provider_access_granted

    page.get_by_role("link", name="Remove service provider access").click()
    dialog.get_by_role("button", name="Remove access").click()
    expect(page.get_by_test_id("provider-state")).to_have_text("Removed")
    expect(page.get_by_test_id("access-health")).to_contain_text("Access health: Removed")
    expect(page.locator("#effective-access .badge--danger")).to_have_count(4)
    assert access_levels_state(tenant=contoso).removed

    # Restore by keyboard, in the one Access levels form: Investigate is preselected.
    expect(page.get_by_test_id("provider-next")).to_contain_text("Any administrator can restore access")
    levels = page.locator("#access-levels")
    expect(levels.get_by_role("switch", name="Investigate incidents and guide my responses")).to_be_checked()
    expect(levels.get_by_role("switch", name="Respond directly to active threats")).not_to_be_checked()
    expect(page.get_by_role("switch", name="Investigate incidents and guide my responses")).to_have_count(1)
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/permissions-removed.png", full_page=True)
    levels.get_by_role("button", name="Restore service provider access").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("provider-state")).to_have_text("Active")
    assert access_levels_state(tenant=contoso).investigate


def test_granting_respond_after_a_stale_sign_in_goes_through_the_password_prompt(
    page, live_server, browser_login, contoso, admin, axe_check
):
    access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=1)
    browser_login(admin)
    # Age the session's password proof beyond 15 minutes.
    from django.contrib.sessions.models import Session

    for s in Session.objects.all():
        data = s.get_decoded()
        data["auth_time"] = data.get("auth_time", 0) - 3600
        s.session_data = Session.objects.encode(data)
        s.save()
    page.goto(f"{live_server.url}{PATH}")
    page.get_by_role("switch", name="Respond directly to active threats").check()
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    page.get_by_label("Password").fill(factories.PASSWORD)
    # The second factor is asked for too, since one is enrolled.
    page.get_by_label("Authenticator code").fill(fresh_totp_code(admin))
    page.get_by_role("button", name="Confirm").click()
    # The change the password was asked for is made at once: no second Save.
    expect(page.get_by_text("Access levels saved.")).to_be_visible()
    expect(page.get_by_test_id("respond-status")).to_contain_text("On")
    expect(page.get_by_role("switch", name="Respond directly to active threats")).to_be_checked()
    axe_check(page)
    assert access_levels_state(tenant=contoso).respond


def test_a_first_time_admin_grants_access_with_one_form_by_keyboard(
    page, live_server, browser_login, contoso, admin, axe_check, screenshot_dir
):
    """Not granted yet: one set of switches, Investigate preselected, the duration shown only
    while a level is being turned on, and everything operable with Tab, Space and Enter."""
    factories.devices(contoso, 5, group=factories.device_group(contoso, "Finance servers"))
    browser_login(admin)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}{PATH}")
    expect(page.get_by_test_id("provider-state")).to_have_text("Not granted yet")
    expect(page.get_by_role("switch", name="Investigate incidents and guide my responses")).to_have_count(1)
    expect(page.get_by_role("switch", name="Respond directly to active threats")).to_have_count(1)
    expect(page.get_by_role("button", name="Grant service provider access")).to_have_count(0)
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/permissions-first-time.png", full_page=True)

    investigate = page.get_by_role("switch", name="Investigate incidents and guide my responses")
    duration = page.locator("#access-levels").get_by_label("Duration")
    expect(investigate).to_be_checked()
    expect(duration).to_be_visible()
    # Space toggles a focused switch; with nothing being turned on the duration goes away.
    investigate.focus()
    page.keyboard.press("Space")
    expect(investigate).not_to_be_checked()
    expect(duration).to_be_hidden()
    page.keyboard.press("Space")
    expect(duration).to_be_visible()
    # Tab reaches the duration, and arrows pick a custom end date, which reveals the date field.
    duration.focus()
    duration.select_option("custom")
    expect(page.locator("#access-levels").get_by_label("Custom end date")).to_be_visible()
    duration.select_option("90")
    expect(page.locator("#access-levels").get_by_label("Custom end date")).to_be_hidden()
    submit = page.get_by_role("button", name="Grant access")
    submit.focus()
    focused_outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert focused_outline != "none"
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("provider-state")).to_have_text("Active")
    expect(page.get_by_test_id("investigate-status")).to_contain_text("90 days left")
    state = access_levels_state(tenant=contoso)
    assert state.investigate and not state.respond and state.grants["investigate"].days_left == 90
    # Active: the End dates table renews inline, and the levels form has no duration (Respond is off, so it
    # appears only when Respond is switched on).
    expect(page.locator("#access-levels").get_by_label("Duration")).to_be_hidden()
    page.get_by_role("switch", name="Respond directly to active threats").check()
    expect(page.locator("#access-levels").get_by_label("Duration")).to_be_visible()
    page.get_by_role("switch", name="Respond directly to active threats").uncheck()
    expect(page.get_by_role("table", name="End dates of the access levels granted")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/permissions-granted.png", full_page=True)


def test_a_reader_sees_the_page_without_any_control_to_change_it(
    page, live_server, browser_login, contoso, admin, reader, axe_check, screenshot_dir
):
    _setup(contoso, admin)
    browser_login(reader)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}{PATH}")
    expect(page.get_by_test_id("read-only")).to_be_visible()
    expect(page.get_by_role("switch", name="Respond directly to active threats")).to_be_disabled()
    expect(page.get_by_role("main").get_by_role("button")).to_have_count(0)  # the page itself offers no control
    expect(page.get_by_role("link", name="Remove service provider access")).to_have_count(0)
    expect(page.get_by_role("table", name="End dates of the access levels granted")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/permissions-reader.png", full_page=True)


def test_renewing_from_the_end_dates_table(page, live_server, browser_login, contoso, admin, axe_check):
    from datetime import timedelta

    from permissions.models import AccessGrant

    access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=1)
    grant = AccessGrant.objects.get()
    before = grant.ends_at
    browser_login(admin)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}{PATH}")
    row = page.get_by_role("row", name=re.compile("Investigate incidents and guide my responses"))
    extend = row.get_by_label("Extend by")
    expect(row.get_by_label("Custom end date")).to_be_hidden()
    extend.select_option("custom")
    expect(row.get_by_label("Custom end date")).to_be_visible()
    extend.select_option("90")
    row.get_by_role("button", name="Renew").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("notice")).to_contain_text("renewed until")
    grant.refresh_from_db()
    assert grant.ends_at == before + timedelta(days=90) and grant.renewed_by == admin
    expect(page.get_by_test_id("days-left-investigate")).to_have_text("270 days left")
    axe_check(page)
