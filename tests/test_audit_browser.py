"""The audit log page in a real browser: filtering, export link, accessibility."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from permissions.selectors import access_levels_state
from permissions.services import access_levels_set, all_devices_set

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_filter_the_log_and_export_what_is_shown(
    page, live_server, browser_login, contoso, admin, secadmin, axe_check, screenshot_dir
):
    access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=1)
    v = access_levels_state(tenant=contoso).version
    all_devices_set(tenant=contoso, acting_user=secadmin, enabled=False, expected_version=v, confirm=True)
    browser_login(admin)
    page.goto(f"{live_server.url}/settings/defender-experts/audit-log/")
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    expect(page.get_by_role("cell", name="Access security data from all devices turned off")).to_be_visible()
    axe_check(page)
    page.get_by_label("Actor").select_option("secadmin@contoso.example")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("status").filter(has_text="event")).to_contain_text("1 event matches the filters")
    expect(page.get_by_test_id("export")).to_have_attribute(
        "href", "/settings/defender-experts/audit-log/export.csv?actor=secadmin%40contoso.example"
    )
    page.screenshot(path=f"{screenshot_dir}/audit-log-filtered.png", full_page=True)
    with page.expect_download() as info:
        page.get_by_test_id("export").click()
    content = open(info.value.path(), encoding="utf-8").read()
    assert "permissions.all_devices_changed" in content and "permissions.level_granted" not in content
    axe_check(page)
