"""The flyout pattern in Chromium: a drawer that states the consequence, keeps focus inside, returns it on close,
and the same page at its own URL for a new tab or a browser without script."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from demo.environments import seed_environment
from readiness.services import readiness_state_for, readiness_sweep
from tenancy.models import ServicePhase, Tenant, User
from tests import factories
from tests.conftest import complete_mfa

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def preparing(contoso: Tenant, sdm: Any) -> Tenant:
    seed_environment(contoso, devices=100)
    readiness_state_for(tenant=contoso)
    readiness_sweep()
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.PREPARING)
    return contoso


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/sign-in/")
    page.get_by_label("Email").fill("sdm@experts.example")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    # Provider staff always sign in with a second factor.
    complete_mfa(page, User.objects.get(email="sdm@experts.example"))


def test_starting_monitoring_opens_a_drawer_then_completes(
    page: Any, live_server: Any, preparing: Tenant, axe_check: Any, screenshot_dir: str
) -> None:
    _sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/provider/readiness/tenants/{preparing.pk}/")
    opener = page.get_by_role("link", name="Start the monitoring phase")
    opener.click()
    drawer = page.get_by_role("dialog", name="Start the monitoring phase for Contoso?")
    expect(drawer).to_be_visible()
    expect(drawer).to_contain_text("our experts monitor Contoso's environment closely")
    reason = drawer.get_by_label("Reason to start before readiness is met")
    expect(reason).to_be_focused()
    axe_check(page)
    page.screenshot(path=f"{screenshot_dir}/flyout-start-monitoring.png")
    # Escape closes it and focus returns to the link; nothing changed.
    page.keyboard.press("Escape")
    expect(drawer).to_have_count(0)
    expect(opener).to_be_focused()
    preparing.refresh_from_db()
    assert preparing.service_phase == ServicePhase.PREPARING
    # Open again by keyboard, give the reason and start: one submit does it.
    page.keyboard.press("Enter")
    drawer.get_by_label("Reason to start before readiness is met").fill("Pilot agreed with the CISO")
    drawer.get_by_role("button", name="Start the monitoring phase").click()
    expect(page.get_by_text("The monitoring phase of Contoso has started.")).to_be_visible()
    preparing.refresh_from_db()
    assert preparing.service_phase == ServicePhase.MONITORING


def test_without_script_the_same_action_is_a_page(browser: Any, live_server: Any, preparing: Tenant) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    _sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/provider/readiness/tenants/{preparing.pk}/")
    page.get_by_role("link", name="Start the monitoring phase").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Start the monitoring phase for Contoso?")
    page.get_by_label("Reason to start before readiness is met").fill("Pilot agreed with the CISO")
    page.get_by_role("button", name="Start the monitoring phase").click()
    expect(page.get_by_text("The monitoring phase of Contoso has started.")).to_be_visible()
    context.close()
