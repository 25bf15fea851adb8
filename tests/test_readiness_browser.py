"""Service status in headless Chromium: the seeded demo, an environment change
picked up by a refresh, sorting and filtering, the export and the history chart."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from demo.environments import seed_environment
from environment import services as env
from environment.models import DomainController
from readiness.catalogue import ENTRIES
from readiness.models import ReadinessState
from readiness.services import readiness_state_for, readiness_sweep
from tenancy.models import Tenant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PATH = "/settings/defender-experts/service-status/"


def refresh(tenant: Tenant) -> ReadinessState:
    readiness_state_for(tenant=tenant)
    ReadinessState.objects.filter(tenant=tenant).update(next_refresh_at=timezone.now())
    readiness_sweep()
    return ReadinessState.objects.get(tenant=tenant)


@pytest.fixture
def demo(contoso: Tenant) -> ReadinessState:
    seed_environment(contoso, devices=1500, domain_controllers=4, sensors=2)
    return refresh(contoso)


def open_page(page: Page, live_server: Any, query: str = "") -> None:
    page.goto(f"{live_server.url}{PATH}{query}")
    expect(page.get_by_role("heading", name="Service status", level=1)).to_be_visible()


def test_service_status_with_the_demo(
    page: Page,
    live_server: Any,
    browser_login: Any,
    admin: Any,
    demo: ReadinessState,
    axe_check: Any,
    screenshot_dir: str,
) -> None:
    browser_login(admin)
    open_page(page, live_server)
    expect(page.get_by_role("heading", name="Actions needed")).to_be_visible()
    expect(page.get_by_role("heading", name="Protected assets")).to_be_visible()
    expect(page.get_by_test_id("note-24h")).to_contain_text(
        "It can take up to 24 hours to get the latest status of your security settings"
    )
    expect(page.get_by_test_id("devices-protected")).to_have_text(f"{demo.devices_protected:,}")
    expect(page.get_by_test_id("devices-to-protect")).to_have_text(f"{demo.devices_to_protect:,}")
    expect(page.get_by_role("link", name="onboard more devices")).to_have_attribute(
        "href", "/environment/devices/?onboarding=not_onboarded"
    )
    expect(page.get_by_role("link", name="install more Defender for Identity sensors")).to_be_visible()
    expect(page.get_by_test_id("phase-banner")).to_contain_text("Phase:")
    # The required actions not completed come first, marked Complete now.
    first = page.locator("[data-testid=actions-table] tbody tr").first
    expect(first).to_have_attribute("data-priority", "complete_now")
    expect(first).to_have_class("readiness-row--now")
    # A row opens (by keyboard) to show why it matters and how to fix it, and the affected devices.
    row = page.locator("#action-mde-av_active")
    row.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(row.get_by_text("Why it matters")).to_be_visible()
    expect(row.locator(".readiness-embedded")).to_contain_text("Page 1 of")
    page.screenshot(path=f"{screenshot_dir}/readiness-service-status.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=f"{screenshot_dir}/readiness-top.png")
    row.scroll_into_view_if_needed()
    page.screenshot(path=f"{screenshot_dir}/readiness-row-open.png")
    axe_check(page)
    # The passive number opens exactly that many devices.
    page.get_by_test_id("devices-passive").click()
    expect(page.get_by_test_id("list-count")).to_contain_text(f"{demo.devices_passive:,} devices")
    axe_check(page)


def test_environment_change_shows_after_the_refresh(
    page: Page,
    live_server: Any,
    browser_login: Any,
    admin: Any,
    contoso: Tenant,
    demo: ReadinessState,
    screenshot_dir: str,
) -> None:
    browser_login(admin)
    open_page(page, live_server)
    expect(page.get_by_test_id("status-mde.av_active")).to_have_text("In progress")
    expect(page.get_by_test_id("status-mdi.sensors")).to_have_text("In progress")
    devices_before = page.get_by_test_id("devices-progress").get_attribute("value")
    # Put every device in active mode and install the missing sensors.
    env.devices_set_antivirus_mode(tenant=contoso, acting_user=admin, mode="active", all_devices=True)
    for dc in DomainController.objects.filter(tenant=contoso, sensor_installed=False):
        env.domain_controller_install_sensor(tenant=contoso, acting_user=admin, domain_controller=dc)
    # Before the refresh: the figures stay, the page says a change was seen.
    page.reload()
    expect(page.get_by_test_id("pending-change")).to_be_visible()
    expect(page.get_by_test_id("devices-passive")).to_have_text(f"{demo.devices_passive:,}")
    # The refresh runs: counts, statuses and bars change.
    after = refresh(contoso)
    page.reload()
    expect(page.get_by_test_id("devices-passive")).to_have_text("0")
    expect(page.get_by_test_id("devices-disabled")).to_have_text("0")
    expect(page.get_by_test_id("devices-protected")).to_have_text(f"{after.devices_protected:,}")
    expect(page.get_by_test_id("identities-protected")).to_have_text(f"{after.identities_total:,}")
    expect(page.get_by_test_id("status-mde.av_active")).to_have_text("Completed")
    expect(page.get_by_test_id("status-mdi.sensors")).to_have_text("Completed")
    expect(page.get_by_test_id("pending-change")).to_have_count(0)
    assert int(page.get_by_test_id("devices-progress").get_attribute("value")) > int(devices_before)
    expect(page.get_by_test_id("identities-progress")).to_have_attribute("value", "100")
    page.screenshot(path=f"{screenshot_dir}/readiness-after-refresh.png", full_page=True)


def test_sort_filter_and_export(
    page: Page, live_server: Any, browser_login: Any, secadmin: Any, demo: ReadinessState, axe_check: Any
) -> None:
    browser_login(secadmin)
    open_page(page, live_server)
    table = page.get_by_test_id("actions-table")
    # Sort by title through htmx: the URL follows, the rows reorder.
    table.get_by_role("link", name="Title").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"sort=title"))
    expect(page.locator("#sort-title")).to_be_focused()  # keyboard users keep their place after the swap
    titles = table.locator("tbody summary").all_inner_texts()
    assert titles == sorted(titles, key=str.lower)
    # Filter by status: only Completed rows remain.
    page.get_by_label("Status").select_option("completed")
    expect(page).to_have_url(re.compile(r"status=completed"))
    expect(table.locator("tbody tr[data-status]:not([data-status=completed])")).to_have_count(0)
    completed = table.locator("tbody tr[data-status=completed]").count()
    assert completed == demo.actions_completed
    page.get_by_label("Product").select_option("mde")
    expect(page).to_have_url(re.compile(r"product=mde"))
    for product in table.locator("tbody tr td:nth-child(2)").all_inner_texts():
        assert product == "Microsoft Defender for Endpoint"
    axe_check(page)
    # The plain-link fallback gives the same result.
    open_page(page, live_server, "?priority=complete_now")
    required = sum(1 for e in ENTRIES if e.required)
    expect(table.locator("tbody tr[data-priority=complete_now]")).to_have_count(required)
    expect(table.locator("tbody tr[data-priority=recommended]")).to_have_count(0)
    # Export.
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    text = open(info.value.path(), encoding="utf-8").read()
    rows = list(csv.reader(io.StringIO(text)))
    actions = [r for r in rows[1:] if r[0] == "Action"]
    assert rows[0][0] == "Section" and len(actions) == required
    assert all(r[4] == "Complete now" and r[3] in ("Not started", "In progress", "Completed") for r in actions)


def test_history_chart_and_request_refresh(
    page: Page,
    live_server: Any,
    browser_login: Any,
    admin: Any,
    contoso: Tenant,
    demo: ReadinessState,
    screenshot_dir: str,
    axe_check: Any,
) -> None:
    env.security_setting_set(tenant=contoso, acting_user=admin, key="purview.unified_audit_log", value="on")
    refresh(contoso)
    env.devices_set_antivirus_mode(tenant=contoso, acting_user=admin, mode="active", all_devices=True)
    refresh(contoso)
    browser_login(admin)
    open_page(page, live_server)
    chart = page.get_by_test_id("history-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("circle[data-series=actions]")).to_have_count(3)
    expect(chart.locator("circle[data-series=devices]")).to_have_count(3)
    page.get_by_text("Show the data behind the chart").click()
    expect(page.get_by_test_id("history").locator("tbody tr")).to_have_count(3)
    page.get_by_test_id("history").scroll_into_view_if_needed()
    page.get_by_test_id("history").screenshot(path=f"{screenshot_dir}/readiness-history.png")
    # Request refresh: the page says when to expect it; a second request is refused.
    page.get_by_role("button", name="Request refresh").click()
    expect(page.get_by_text(re.compile(r"Refresh requested\. Expect the latest status by"))).to_be_visible()
    expect(page.get_by_test_id("expected-by")).to_be_visible()
    axe_check(page)
    page.get_by_role("button", name="Request refresh").click()
    expect(page.get_by_text(re.compile("You can request another after"))).to_be_visible()
    # The next action clears the message: it was about the request, not about what comes after.
    page.get_by_label("Status").select_option("completed")
    expect(page).to_have_url(re.compile(r"status=completed"))
    expect(page.get_by_text(re.compile("You can request another after"))).to_have_count(0)


def test_reader_has_no_request_refresh_button(
    page: Page, live_server: Any, browser_login: Any, reader: Any, demo: ReadinessState
) -> None:
    browser_login(reader)
    open_page(page, live_server)
    expect(page.get_by_role("button", name="Request refresh")).to_have_count(0)
    expect(page.get_by_role("heading", name="Actions needed")).to_be_visible()


def test_sdm_starts_the_monitoring_phase(
    page: Page,
    live_server: Any,
    browser_login: Any,
    sdm: Any,
    contoso: Tenant,
    demo: ReadinessState,
    axe_check: Any,
    screenshot_dir: str,
) -> None:
    from tenancy.models import ServicePhase

    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.PREPARING)
    browser_login(sdm)
    page.goto(f"{live_server.url}/provider/readiness-runs/")
    expect(page.get_by_role("heading", name="Readiness runs")).to_be_visible()
    expect(page.get_by_test_id("runs-table")).to_contain_text("Succeeded")
    # Ten columns, all visible at 1280 px without scrolling sideways.
    page.set_viewport_size({"width": 1280, "height": 900})
    wrap = page.evaluate(
        "(() => { const w = document.querySelector('[data-testid=runs-table]').parentElement;"
        " return [w.scrollWidth, w.clientWidth]; })()"
    )
    assert wrap[0] <= wrap[1], wrap
    axe_check(page)
    page.get_by_test_id("runs-table").get_by_role("link", name="Contoso").first.click()
    expect(page.get_by_test_id("readiness-verdict")).to_contain_text("Not ready")
    # The drawer states the consequence and, readiness not being met, asks for a reason (the server refuses a start
    # without one: tests/test_readiness_views.py).
    page.get_by_role("link", name="Start the monitoring phase").click()
    drawer = page.get_by_role("dialog", name="Start the monitoring phase for Contoso?")
    expect(drawer).to_contain_text("Readiness isn't met yet")
    expect(page.get_by_test_id("phase")).to_have_text("Preparing")
    drawer.get_by_label("Reason to start before readiness is met").fill("Agreed with the CISO on the weekly call")
    drawer.get_by_role("button", name="Start the monitoring phase").click()
    expect(page.get_by_text("The monitoring phase of Contoso has started.")).to_be_visible()
    expect(page.get_by_test_id("phase")).to_have_text("Monitoring")
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/readiness-provider-tenant.png", full_page=True)


def test_actions_table_fits_its_card_at_1280px_with_rows_open(
    page: Page,
    live_server: Any,
    browser_login: Any,
    admin: Any,
    demo: ReadinessState,
    screenshot_dir: str,
    axe_check: Any,
) -> None:
    """Opened rows (with their lists of affected devices and domain controllers) wrap inside the title
    column: the table never scrolls sideways and "Last status change" is never clipped at 1280 px."""
    page.set_viewport_size({"width": 1280, "height": 900})
    browser_login(admin)
    open_page(page, live_server, "?sort=changed&dir=desc")  # the sort arrow widens the last header
    for key in ("mde-av_active", "mdi-sensors", "entra-licences"):
        page.locator(f"#action-{key} summary").click()
    expect(page.locator("#action-mde-av_active .readiness-embedded")).to_contain_text("Page 1 of")
    expect(page.locator("#action-mdi-sensors .readiness-embedded table")).to_be_visible()
    expect(page.get_by_test_id("measured-entra.licences")).to_be_visible()
    sizes = page.evaluate(
        """() => {
          const wrap = document.querySelector('#actions-section > .table-wrap');
          const right = wrap.getBoundingClientRect().right;
          const cells = [...wrap.querySelectorAll('thead th, tbody > tr > td')];
          return {
            client: wrap.clientWidth, scroll: wrap.scrollWidth,
            overflowing: cells
              .filter(c => c.getBoundingClientRect().right > right + 0.5 || c.scrollWidth > c.clientWidth + 1)
              .map(c => c.textContent.trim().slice(0, 40)),
            inner: [...wrap.querySelectorAll('.readiness-affected .table-wrap')]
              .map(w => w.scrollWidth - w.clientWidth),
          };
        }"""
    )
    assert sizes["scroll"] <= sizes["client"], sizes
    assert sizes["overflowing"] == [], sizes
    assert sizes["inner"] and all(extra <= 0 for extra in sizes["inner"]), sizes
    header = page.locator("#sort-changed")
    header.scroll_into_view_if_needed()
    expect(header).to_be_in_viewport(ratio=1)  # wholly visible: not clipped on the right
    page.locator("#actions-section").screenshot(path=f"{screenshot_dir}/readiness-actions-1280.png")
    axe_check(page)  # with the rows open: the embedded lists, "What's measured" and the directory link


def test_first_run_page_is_accessible(
    page: Page, live_server: Any, browser_login: Any, admin: Any, contoso: Tenant, axe_check: Any
) -> None:
    seed_environment(contoso, devices=40)
    browser_login(admin)
    open_page(page, live_server)
    expect(page.get_by_test_id("first-run")).to_have_text("The first readiness assessment is being prepared.")
    expect(page.get_by_test_id("assets-not-assessed")).to_be_visible()
    axe_check(page)


def test_a_link_to_an_action_opens_its_row(
    page: Page, live_server: Any, browser_login: Any, admin: Any, demo: ReadinessState
) -> None:
    browser_login(admin)
    open_page(page, live_server)
    link = page.get_by_test_id("complete-now-list").get_by_role("link").first
    target = link.get_attribute("href").split("#")[1]
    link.click()
    row = page.locator(f"#{target}")
    expect(row.locator("details")).to_have_attribute("open", "")
    expect(row.locator("summary")).to_be_focused()
    expect(row.get_by_text("How to fix it")).to_be_visible()


def test_still_to_protect_adds_up_and_each_reason_opens_its_list(
    page: Page, live_server: Any, browser_login: Any, admin: Any, contoso: Tenant, demo: ReadinessState, axe_check: Any
) -> None:
    """100 more licences than devices: the headline is the target minus the protected, and the reasons
    under it (licensed but not yet present among them) add up to it; a protected device offers no fix."""
    from environment.models import LicenceProduct
    from tests import factories

    factories.licence(contoso, LicenceProduct.DEFENDER_ENDPOINT_P2, seats=demo.devices_total + 100)
    state = refresh(contoso)
    browser_login(admin)
    open_page(page, live_server)
    headline = int(page.get_by_test_id("devices-to-protect").inner_text().replace(",", ""))
    assert headline == state.devices_target - state.devices_protected
    breakdown = page.get_by_test_id("devices-breakdown")
    counts = [int(t.replace(",", "")) for t in breakdown.get_by_role("link").all_inner_texts()]
    assert sum(counts) == headline
    expect(page.get_by_test_id("devices-not_present")).to_have_text("100")
    axe_check(page)
    page.get_by_test_id("devices-passive").click()
    expect(page.get_by_test_id("list-count")).to_contain_text(f"{state.devices_passive:,} device")
    expect(page.get_by_role("link", name=re.compile("Set to active mode")).first).to_be_visible()
    page.goto(f"{live_server.url}{PATH}devices/protected/")
    expect(page.get_by_test_id("list-count")).to_contain_text(f"{state.devices_protected:,} device")
    expect(page.get_by_role("link", name=re.compile("Set to active mode"))).to_have_count(0)
    expect(page.get_by_test_id("no-fix").first).to_be_visible()


def test_a_change_in_permissions_shows_at_once_as_waiting_for_the_refresh(
    page: Page, live_server: Any, browser_login: Any, admin: Any, contoso: Tenant, demo: ReadinessState, axe_check: Any
) -> None:
    from permissions.selectors import access_levels_state
    from permissions.services import access_levels_set

    browser_login(admin)
    open_page(page, live_server)
    status = page.get_by_test_id("status-entra.provider_access")
    expect(status).to_have_text("Not started")
    access_levels_set(
        tenant=contoso,
        acting_user=admin,
        investigate=True,
        respond=False,
        expected_version=access_levels_state(tenant=contoso).version,
    )
    page.reload()
    expect(status).to_have_text("In progress, waiting for the next refresh")
    expect(page.get_by_test_id("confirm-by-entra.provider_access")).to_contain_text("Confirmed by")
    expect(page.get_by_test_id("access-health-banner")).to_have_count(0)  # Permissions says Active too
    axe_check(page)
    refresh(contoso)
    page.reload()
    expect(status).to_have_text("Completed")
