"""In Chromium: onboard a device group, then switch its passive devices to active."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from environment.models import AntivirusMode, Device, OnboardingState
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_onboard_a_group_and_switch_passive_devices_to_active(
    live_server, page, browser_login, axe_check, screenshot_dir, admin, contoso
):
    servers = factories.device_group(contoso, "Datacenter servers")
    laptops = factories.device_group(contoso, "Corporate laptops")
    factories.devices(contoso, 6, group=servers, onboarded=False, prefix="CTS-SRV")
    factories.devices(contoso, 3, group=servers, av_mode=AntivirusMode.PASSIVE, prefix="CTS-SRVP")
    factories.devices(contoso, 4, group=laptops, onboarded=False, prefix="CTS-LT")
    factories.devices(contoso, 2, group=laptops, av_mode=AntivirusMode.PASSIVE, prefix="CTS-LTP")
    factories.licence(contoso, "mde_p2", 20)

    browser_login(admin)
    page.goto(f"{live_server.url}/environment/")
    expect(page.get_by_test_id("env-banner")).to_contain_text("Emulated environment")
    expect(page.get_by_role("heading", level=1)).to_have_text("Environment")
    axe_check(page)

    page.get_by_role("link", name="Devices", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Devices")
    axe_check(page)

    # Filter to the group (htmx swaps the list in and updates the address bar).
    page.get_by_label("Device group").select_option(label="Datacenter servers")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_test_id("device-table")).to_contain_text("9 devices match the filters")
    expect(page).to_have_url(re.compile(rf"group={servers.pk}"))

    page.get_by_role("button", name="Onboard all 9 matching").click()
    expect(page.get_by_role("status").filter(has_text="Onboarded 6 devices.")).to_be_visible()
    assert not Device.objects.filter(device_group=servers, onboarding_state=OnboardingState.NOT_ONBOARDED).exists()
    assert Device.objects.filter(device_group=laptops, onboarding_state=OnboardingState.NOT_ONBOARDED).count() == 4

    # Now only the group's passive devices, switched to active.
    page.get_by_label("Antivirus mode", exact=True).select_option("passive")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_test_id("device-table")).to_contain_text("3 devices match the filters")
    page.get_by_label("Switch to").select_option("active")
    page.get_by_role("button", name="Apply to all 3 matching").click()
    expect(
        page.get_by_role("status").filter(has_text="Defender Antivirus switched to active mode on 3 devices.")
    ).to_be_visible()
    assert not Device.objects.filter(device_group=servers, av_mode=AntivirusMode.PASSIVE).exists()
    assert Device.objects.filter(device_group=laptops, av_mode=AntivirusMode.PASSIVE).count() == 2

    # Back to everything: the protected count moved.
    page.goto(f"{live_server.url}/environment/devices/?group={servers.pk}")
    expect(page.get_by_test_id("device-summary")).to_contain_text("9 protected")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/environment-devices.png", full_page=True)

    page.goto(f"{live_server.url}/environment/")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/environment-overview.png", full_page=True)


def test_other_pages_are_accessible(live_server, page, browser_login, axe_check, screenshot_dir, admin, contoso):
    dc = factories.domain_controller(contoso, "CTS-DC01.corp.contoso.example")
    factories.domain_controller(contoso, "CTS-DC02.corp.contoso.example", sensor=True)
    zoe = factories.directory_user(contoso, "Zoë Ålström", domain_controller=dc, job_title="SOC Analyst")
    factories.directory_group(contoso, "SOC Team", members=[zoe])
    browser_login(admin)
    for path, name in [
        ("domain-controllers/", "environment-dcs"),
        ("directory/", "environment-directory"),
        ("settings/", "environment-settings"),
        ("licences/", "environment-licences"),
    ]:
        page.goto(f"{live_server.url}/environment/{path}")
        axe_check(page)
        page.screenshot(path=f"{screenshot_dir}/{name}.png", full_page=True)

    # Install a sensor with htmx; the panel reports it.
    page.goto(f"{live_server.url}/environment/domain-controllers/")
    page.get_by_role("button", name="Install sensor on CTS-DC01.corp.contoso.example").click()
    expect(page.get_by_role("status").filter(has_text="sensor is installed on CTS-DC01")).to_be_visible()
    # Disable a user in place.
    page.goto(f"{live_server.url}/environment/directory/")
    page.get_by_role("button", name="Disable Zoë Ålström").click()
    expect(page.get_by_role("button", name="Enable Zoë Ålström")).to_be_visible()
    axe_check(page)


def test_seeded_demo_environment_reads_well(live_server, page, browser_login, axe_check, screenshot_dir, settings):
    from demo.seed import seed_demo
    from tenancy.models import User

    seed_demo(seed=42, devices=1500, reset=False)
    browser_login(
        User.objects.get(email="admin@contoso.example"),
        password=settings.DEMO_PASSWORD,
        secret=settings.DEMO_TOTP_SECRET,
    )
    page.goto(f"{live_server.url}/environment/")
    expect(page.get_by_test_id("metric-devices")).to_contain_text("of 1,500 devices")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/environment-seeded-overview.png", full_page=True)
    page.goto(f"{live_server.url}/environment/directory/")
    expect(page.get_by_test_id("user-table")).to_be_visible()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/environment-seeded-directory.png", full_page=True)


def test_select_devices_by_keyboard_and_select_all(live_server, page, browser_login, axe_check, admin, contoso):
    factories.devices(contoso, 4, onboarded=False, prefix="KB")
    browser_login(admin)
    page.goto(f"{live_server.url}/environment/devices/")
    # Keyboard only: tick one device and press the button.
    box = page.get_by_label("Select KB-000002")
    box.focus()
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    page.get_by_role("button", name="Onboard selected").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Onboarded 1 device.")).to_be_visible()
    assert Device.objects.get(name="KB-000002").onboarding_state == OnboardingState.ONBOARDED
    # "Select all on this page" appears with JavaScript and ticks every row (after the htmx swap too).
    master = page.get_by_label("Select all devices on this page")
    master.check()
    for name in ("KB-000000", "KB-000001", "KB-000003"):
        expect(page.get_by_label(f"Select {name}")).to_be_checked()
    page.get_by_label("Switch to").select_option("passive")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_role("status").filter(has_text="passive mode on 4 devices")).to_be_visible()
    assert set(Device.objects.values_list("av_mode", flat=True)) == {AntivirusMode.PASSIVE}
    axe_check(page)
