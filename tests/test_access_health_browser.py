"""On the demo's Contoso, where every device is in a device group: switching off "Access security data
from all devices" leaves the experts no device to reach, and the access health turns red on Permissions,
on Service status and on the landing page."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from demo.seed import seed_demo
from environment.models import Device
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set
from tenancy.models import Tenant, User
from tests.conftest import complete_mfa

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_all_devices_off_turns_the_banner_red_everywhere(live_server, page, axe_check, screenshot_dir):
    seed_demo(devices=20)
    contoso = Tenant.objects.get(primary_domain="contoso.example")
    admin = User.objects.get(email="admin@contoso.example")
    assert not Device.objects.filter(tenant=contoso, device_group__isnull=True).exists()
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=False,
        expected_version=access_levels_state(tenant=contoso).version,
    )
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(settings.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    complete_mfa(page, admin, settings.DEMO_TOTP_SECRET)

    page.goto(f"{live_server.url}/settings/defender-experts/permissions/")
    health = page.get_by_test_id("access-health")
    expect(health).to_contain_text("Access health: Active")
    page.get_by_role("switch", name=re.compile("Access security data from all devices")).uncheck()
    page.get_by_test_id("all-devices-warning").get_by_role("button", name="Turn off").click()
    expect(page.get_by_test_id("all-devices-state")).to_have_text("Off")
    # The panel and the banner agree: nothing in reach is an error, with the reason and the fix.
    expect(health).to_have_attribute("data-state", "unreachable")
    expect(health).to_have_class(re.compile(r"messagebar--error"))
    expect(health).to_contain_text("Access health: No devices in reach")
    expect(health).to_contain_text("Access security data from all devices is off")
    expect(health).to_contain_text("Turn on Access security data from all devices")
    expect(page.locator("#effective-access [data-item='investigate_devices']")).to_contain_text("Limited")
    expect(page.get_by_role("link", name="Review permissions")).to_have_count(0)  # never to the page it's on
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/access-health-unreachable-permissions.png", full_page=True)

    for path, name in (
        ("/settings/defender-experts/service-status/", "service-status"),
        ("/settings/defender-experts/", "landing"),
    ):
        page.goto(f"{live_server.url}{path}")
        banner = page.get_by_test_id("access-health-banner")
        expect(banner).to_have_attribute("data-state", "unreachable")
        expect(banner).to_have_class(re.compile(r"messagebar--error"))
        expect(banner).to_contain_text("Our experts can't reach any of your devices")
        expect(banner.get_by_role("link", name="Review permissions")).to_have_attribute(
            "href", "/settings/defender-experts/permissions/"
        )
        axe_check(page)
        page.screenshot(path=f"{screenshot_dir}/access-health-unreachable-{name}.png", full_page=True)
