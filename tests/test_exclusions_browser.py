"""Exclusions in Chromium, by keyboard alone: the tabs, the add drawer with its search and multi-select,
the remove dialog, the high-value confirmation; axe-clean; and the provider's "Guidance only" answer."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from exclusions.models import ExcludedDeviceGroup, ExcludedUserGroup
from exclusions.selectors import exclusion_state
from permissions.services import access_levels_set
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _focus(page: Any, locator: Any, limit: int = 80) -> None:
    """Tab until ``locator`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        if locator.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError("never reached by Tab")


def test_excluding_and_removing_groups_by_keyboard(
    page: Any, live_server: Any, browser_login: Any, admin: Any, contoso: Any, axe_check: Any, screenshot_dir: str
) -> None:
    execs = factories.device_group(contoso, "Executives")
    factories.devices(contoso, 2, group=execs)
    factories.device_group(contoso, "Labs")
    factories.device_group(contoso, "Finance")
    factories.security_group(contoso, "VIPs", members=[factories.directory_user(contoso, "Ann")])
    browser_login(admin)
    page.goto(f"{live_server.url}/settings/defender-experts/exclusions/")
    axe_check(page)
    add = page.get_by_test_id("add-device-groups")
    _focus(page, add)
    page.keyboard.press("Enter")
    drawer = page.get_by_role("dialog", name="Add device groups")
    expect(drawer).to_be_visible()
    search = drawer.get_by_role("searchbox", name="Search device groups")
    expect(search).to_be_focused()
    axe_check(page)
    page.keyboard.type("ex", delay=30)
    expect(drawer.get_by_test_id("group-options")).not_to_contain_text("Labs")
    box = drawer.get_by_role("checkbox", name="Executives")
    _focus(page, box)
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    _focus(page, drawer.get_by_role("button", name="Add device groups"))
    page.screenshot(path=f"{screenshot_dir}/exclusions-add-device-groups.png")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Excluded 1 device group from remediation.")).to_be_visible()
    expect(page.get_by_test_id("excluded-device-groups")).to_contain_text("Executives")
    assert ExcludedDeviceGroup.objects.filter(device_group=execs).exists()
    axe_check(page)
    # Remove it again through the dialog.
    remove = page.get_by_role("link", name="Remove device group Executives")
    _focus(page, remove)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Remove Executives from the exclusion list?")
    expect(dialog).to_be_visible()
    axe_check(page)
    _focus(page, dialog.get_by_role("button", name="Remove device group"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Executives was removed from the exclusion list.")).to_be_visible()
    assert not ExcludedDeviceGroup.objects.exists()
    # The User groups tab, and a security group excluded the same way.
    tab = page.get_by_test_id("tab-user-groups")
    _focus(page, tab)
    page.keyboard.press("Enter")
    expect(page.get_by_text("On-prem Entra ID users cannot be excluded at this time.")).to_be_visible()
    _focus(page, page.get_by_test_id("add-user-groups"))
    page.keyboard.press("Enter")
    drawer = page.get_by_role("dialog", name="Add user groups")
    _focus(page, drawer.get_by_role("checkbox", name="VIPs"))
    page.keyboard.press("Space")
    _focus(page, drawer.get_by_role("button", name="Add user groups"))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("excluded-user-groups")).to_contain_text("VIPs")
    assert ExcludedUserGroup.objects.count() == 1
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/exclusions-user-groups.png", full_page=True)


def test_the_high_value_option_asks_first_by_keyboard(
    page: Any, live_server: Any, browser_login: Any, admin: Any, contoso: Any, axe_check: Any
) -> None:
    browser_login(admin)
    page.goto(f"{live_server.url}/settings/defender-experts/exclusions/")
    switch = page.get_by_role("switch", name="Exclude all high-value devices and users")
    _focus(page, switch)
    page.keyboard.press("Space")
    _focus(page, page.locator("#high-value").get_by_role("button", name="Save"))
    page.keyboard.press("Enter")
    confirm = page.get_by_test_id("high-value-confirm")
    expect(confirm).to_contain_text("tagged as high-value in the future")
    axe_check(page)
    assert exclusion_state(tenant=contoso).exclude_high_value is False
    _focus(page, confirm.get_by_role("button", name="Turn on"))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("high-value-state")).to_have_text("On")
    assert exclusion_state(tenant=contoso).exclude_high_value is True


def test_the_provider_sees_guidance_only_for_an_excluded_device(
    page: Any, live_server: Any, browser_login: Any, sdm: Any, admin: Any, contoso: Any, axe_check: Any
) -> None:
    from exclusions.services import exclusion_device_groups_add

    execs = factories.device_group(contoso, "Executives")
    factories.devices(contoso, 1, group=execs, prefix="ceo")
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=True,
        expected_version=1,
        recently_authenticated=True,
    )
    exclusion_device_groups_add(tenant=contoso, acting_user=admin, device_group_ids=[execs.pk], expected_version=1)
    browser_login(sdm)
    page.goto(f"{live_server.url}/provider/access/{contoso.pk}/")
    expect(page.get_by_test_id("exclusions-read-only")).to_contain_text("Executives")
    expect(page.get_by_test_id("effective-access")).to_contain_text(
        "1 device and 0 users are excluded from remediation"
    )
    page.get_by_label("Action", exact=True).select_option("isolate_device")
    page.get_by_label("Device name").fill("ceo-000000")
    page.get_by_role("button", name="Attempt").click()
    decision = page.get_by_test_id("decision")
    expect(decision).to_contain_text("Guidance only: Isolate a device")
    expect(decision).to_contain_text("remediation guidance")
    axe_check(page)


def test_the_guide_reaches_exclusions_from_permissions_by_keyboard(
    page: Any, live_server: Any, browser_login: Any, admin: Any, sdm: Any, contoso: Any, axe_check: Any
) -> None:
    from onboarding.services import invitation_send

    invitation_send(tenant=contoso, acting_user=sdm)
    factories.device_group(contoso, "Executives")
    browser_login(admin)
    page.goto(f"{live_server.url}/settings/defender-experts/get-started/permissions/")
    manage = page.get_by_test_id("manage-exclusions")
    _focus(page, manage)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Exclusions", exact=True)).to_be_visible()
    axe_check(page)
    _focus(page, page.get_by_test_id("add-device-groups"))
    page.keyboard.press("Enter")
    drawer = page.get_by_role("dialog", name="Add device groups")
    _focus(page, drawer.get_by_role("checkbox", name="Executives"))
    page.keyboard.press("Space")
    _focus(page, drawer.get_by_role("button", name="Add device groups"))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("excluded-device-groups")).to_contain_text("Added in this step")
    # Skip discards it; the admin is sent back to finish Permissions first.
    _focus(page, page.get_by_role("button", name="Skip"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Skipped: the exclusions added in this step were discarded.")).to_be_visible()
    expect(page.get_by_test_id("step-permissions")).to_have_attribute("data-state", "current")
    assert not ExcludedDeviceGroup.objects.exists()
