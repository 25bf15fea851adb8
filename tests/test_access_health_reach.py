"""Access health is computed from the experts' effective reach: Active only when they can reach the share
of devices readiness requires; no device in reach is an error, with the reason and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from environment.models import DeviceGroup
from permissions.evaluator import device_reach
from permissions.selectors import access_health, access_levels_state, access_snapshot, device_scope
from permissions.services import access_levels_set, all_devices_set
from tenancy.models import Tenant
from tests import factories


def grant(tenant: Tenant, user: Any) -> None:
    state = access_levels_state(tenant=tenant)
    access_levels_set(tenant=tenant, acting_user=user, investigate=True, respond=False, expected_version=state.version)


def all_devices_off(tenant: Tenant, user: Any) -> None:
    state = access_levels_state(tenant=tenant)
    all_devices_set(tenant=tenant, acting_user=user, enabled=False, expected_version=state.version, confirm=True)


@pytest.fixture
def grouped(contoso: Tenant, admin: Any) -> list[DeviceGroup]:
    """Every device of Contoso in a device group; access granted (Investigate incidents and guide my responses)."""
    groups = [factories.device_group(contoso, "Servers"), factories.device_group(contoso, "Workstations")]
    factories.devices(contoso, 4, group=groups[0])
    factories.devices(contoso, 6, group=groups[1])
    grant(contoso, admin)
    return groups


def test_everything_in_reach_is_active(contoso: Tenant, admin: Any, grouped: Any) -> None:
    assert access_health(tenant=contoso).state == "active"


def test_all_devices_off_with_every_device_in_a_group_is_an_error(contoso: Tenant, admin: Any, grouped: Any) -> None:
    all_devices_off(contoso, admin)
    reach = device_reach(tenant=contoso, snapshot=access_snapshot(tenant=contoso), scope=device_scope(tenant=contoso))
    assert (reach.total, reach.reachable) == (10, 0)
    health = access_health(tenant=contoso)
    assert health.state == "unreachable" and health.tone == "error" and health.needs_attention
    assert "can't reach any of your 10 devices" in health.message
    assert "Access security data from all devices is off" in health.message  # the reason
    assert "Turn on Access security data from all devices" in health.fix  # the fix


def test_some_devices_out_of_reach_is_limited_below_the_required_share(
    contoso: Tenant, admin: Any, grouped: Any, settings: Any
) -> None:
    factories.devices(contoso, 10)  # outside any group: still in reach
    all_devices_off(contoso, admin)
    health = access_health(tenant=contoso)
    assert health.state == "limited" and health.tone == "warning"
    assert "10 of your 20 devices (50%)" in health.message and "readiness needs 100%" in health.message
    settings.READINESS_REQUIRED_REACH = 50
    assert access_health(tenant=contoso).state == "active"


def test_the_provider_list_agrees_with_the_customer(
    login: Any, sdm: Any, contoso: Tenant, admin: Any, grouped: Any
) -> None:
    all_devices_off(contoso, admin)
    html = login(sdm).get(reverse("permissions_provider:access")).content.decode()
    assert f'data-testid="health-{contoso.pk}">No devices in reach<' in html


@pytest.mark.parametrize(
    "url_name",
    ["permissions:index", "readiness:service_status", "onboarding:index"],
    ids=["permissions", "status", "landing"],
)
def test_the_banner_is_red_on_every_page(login: Any, admin: Any, contoso: Tenant, grouped: Any, url_name: str) -> None:
    client = login(admin)
    all_devices_off(contoso, admin)
    html = client.get(reverse(url_name)).content.decode()
    if url_name == "permissions:index":
        panel = html.split('data-testid="access-health"')[1].split("</div></div>")[0]
        assert 'data-state="unreachable"' in panel and "Access health: No devices in reach" in panel
        assert "messagebar--error" in html.split('data-testid="access-health"')[0].rsplit("<div", 1)[1]
        assert "Access health: Active" not in html
    else:
        banner = html.split('data-testid="access-health-banner"')[0].rsplit("<div", 1)[1]
        assert "messagebar--error" in banner
        body = html.split('data-testid="access-health-banner"')[1].split("</div>\n</div>")[0]
        assert "can&#x27;t reach any of your 10 devices" in body
        # The banner links to Permissions from the other pages.
        assert f'href="{reverse("permissions:index")}">Review permissions' in body


def test_the_banner_never_links_to_the_page_it_is_on(login: Any, admin: Any, contoso: Tenant, grouped: Any) -> None:
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    all_devices_off(contoso, admin)
    health = access_health(tenant=contoso)
    for url_name, linked in (("permissions:index", False), ("readiness:service_status", True)):
        request = RequestFactory().get(reverse(url_name))
        from django.urls import resolve

        request.resolver_match = resolve(reverse(url_name))
        html = render_to_string("permissions/_access_health_banner.html", {"access_health": health}, request=request)
        assert ("Review permissions" in html) is linked, url_name
