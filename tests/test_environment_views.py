"""The Environment area over HTTP: the cast, isolation, bad input and htmx."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from environment.models import (
    AntivirusMode,
    Device,
    DirectoryGroup,
    DirectoryUser,
    DomainController,
    Licence,
    OnboardingState,
    SecuritySetting,
)
from tests import factories

pytestmark = pytest.mark.django_db

PAGES = ["overview", "devices", "domain_controllers", "directory", "settings", "licences"]
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def env(contoso):
    """A small Contoso environment."""
    servers = factories.device_group(contoso, "Servers")
    laptops = factories.device_group(contoso, "Laptops")
    factories.devices(contoso, 6, group=servers, onboarded=False, prefix="srv")
    factories.devices(contoso, 4, group=servers, av_mode=AntivirusMode.PASSIVE, prefix="srvp")
    factories.devices(contoso, 5, group=laptops, prefix="lt")
    dc = factories.domain_controller(contoso, "dc01.corp.contoso.example")
    factories.domain_controller(contoso, "dc02.corp.contoso.example", sensor=True)
    zoe = factories.directory_user(contoso, "Zoë Ålström", domain_controller=dc)
    factories.directory_group(contoso, "SOC Team", members=[zoe])
    factories.licence(contoso, "mde_p2", 20)
    return {"servers": servers, "laptops": laptops, "dc": dc, "zoe": zoe}


# --- Who may see and change what -------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_page_is_marked_as_the_emulated_environment(login, admin, env, page):
    response = login(admin).get(reverse(f"environment:{page}"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Emulated environment" in content
    assert "this stands in for your Microsoft tenant" in content


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_is_sent_to_sign_in(client, page):
    response = client.get(reverse(f"environment:{page}"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("page", PAGES)
def test_reader_and_operator_can_view_but_not_see_controls(login, reader, operator, env, page):
    for user in (reader, operator):
        response = login(user).get(reverse(f"environment:{page}"))
        assert response.status_code == 200
        assert b"Only a Global Administrator or a Security Administrator can change it" in response.content
        assert b'name="action"' not in response.content


def _writes(env):
    dc, zoe = env["dc"], env["zoe"]
    return [
        (reverse("environment:devices"), {"action": "onboard_matching"}),
        (reverse("environment:domain_controller_sensor", args=[dc.pk]), {"action": "install"}),
        (reverse("environment:directory_user_enabled", args=[zoe.pk]), {"enabled": "false"}),
        (reverse("environment:directory_user_high_value", args=[zoe.pk]), {"high_value": "true"}),
        (reverse("environment:directory_user_delete", args=[zoe.pk]), {"confirm": "yes"}),
        (
            reverse("environment:directory_user_create"),
            {"display_name": "A", "user_principal_name": "a@contoso.example"},
        ),
        (reverse("environment:directory_group_create"), {"display_name": "G", "security_enabled": "on"}),
        (reverse("environment:settings"), {"key": "mde.tamper_protection", "value": "on"}),
        (reverse("environment:licences"), {"product": "mdi", "seats": "5"}),
    ]


def test_reader_and_operator_get_403_on_every_write(login, reader, operator, env):
    for user in (reader, operator):
        client = login(user)
        for url, data in _writes(env):
            assert client.post(url, data).status_code == 403, url
    assert not AuditEvent.objects.filter(action__startswith="environment.").exists()
    assert Device.objects.filter(onboarding_state=OnboardingState.ONBOARDED).count() == 9
    assert DirectoryUser.objects.get(pk=env["zoe"].pk).enabled


def test_outsider_gets_404_for_contoso_objects_and_sees_only_fabrikam(login, outsider, env, fabrikam):
    client = login(outsider)
    dc, zoe, servers = env["dc"], env["zoe"], env["servers"]
    assert (
        client.post(reverse("environment:domain_controller_sensor", args=[dc.pk]), {"action": "install"}).status_code
        == 404
    )
    assert (
        client.post(reverse("environment:directory_user_enabled", args=[zoe.pk]), {"enabled": "false"}).status_code
        == 404
    )
    assert client.get(reverse("environment:directory_user_delete", args=[zoe.pk])).status_code == 404
    assert (
        client.post(reverse("environment:directory_user_high_value", args=[zoe.pk]), {"high_value": "true"}).status_code
        == 404
    )
    assert not DirectoryUser.objects.get(pk=zoe.pk).high_value
    assert client.get(reverse("environment:devices"), {"group": servers.pk}).status_code == 404
    contoso_device = Device.objects.filter(tenant=env["servers"].tenant).first()
    response = client.post(
        reverse("environment:devices"), {"action": "onboard_selected", "device": [contoso_device.pk]}
    )
    assert response.status_code == 404
    assert not DomainController.objects.get(pk=dc.pk).sensor_installed
    # Their own pages show none of Contoso's data.
    page = client.get(reverse("environment:devices")).content.decode()
    assert "srv-" not in page and "Servers" not in page
    assert "Zoë" not in client.get(reverse("environment:directory")).content.decode()


def test_malformed_ids_are_404(login, admin, env):
    client = login(admin)
    assert client.get(reverse("environment:devices"), {"group": "abc"}).status_code == 404
    assert (
        client.post(reverse("environment:devices"), {"action": "onboard_selected", "device": ["1x"]}).status_code == 404
    )
    assert client.post("/environment/domain-controllers/abc/sensor/", {"action": "install"}).status_code == 404
    assert (
        client.post(reverse("environment:domain_controller_sensor", args=[999999]), {"action": "install"}).status_code
        == 404
    )


# --- Devices ---------------------------------------------------------------------------------------


def test_device_filters(login, reader, env):
    client = login(reader)
    servers = env["servers"]
    page = client.get(
        reverse("environment:devices"), {"group": servers.pk, "onboarding": "not_onboarded"}
    ).content.decode()
    assert "srv-000000" in page and "srvp-" not in page and "lt-" not in page
    page = client.get(reverse("environment:devices"), {"av": "passive"}).content.decode()
    assert "srvp-000003" in page and "srv-000000" not in page
    page = client.get(reverse("environment:devices"), {"q": "LT-0000"}).content.decode()
    assert "lt-000004" in page and "srv-" not in page
    # Unknown filter values are ignored, a page past the end shows the last page.
    assert (
        client.get(reverse("environment:devices"), {"av": "zzz", "onboarding": "?", "page": "999"}).status_code == 200
    )


def test_devices_paginate(login, admin, contoso):
    factories.devices(contoso, 120, prefix="bulk")
    client = login(admin)
    first = client.get(reverse("environment:devices")).content.decode()
    assert "bulk-000049" in first and "bulk-000050" not in first and "page 1 of 3" in first

    # Keyset pages: Next resumes after the last name shown, Previous before the first one.
    def rows(params):
        body = client.get(reverse("environment:devices"), params).content.decode()
        return body, [n for n in (f"bulk-{i:06d}" for i in range(120)) if f'data-device="{n}"' in body]

    body, shown = rows({"after": "bulk-000049", "page": 2})
    assert shown == [f"bulk-{i:06d}" for i in range(50, 100)] and "page 2 of 3" in body
    assert "before=bulk-000050" in body and "after=bulk-000099" in body
    body, shown = rows({"after": "bulk-000099", "page": 3})
    assert shown == [f"bulk-{i:06d}" for i in range(100, 120)] and "page 3 of 3" in body
    assert 'Next<span class="sr-only"> page</span>' not in body  # no Next on the last page
    body, shown = rows({"before": "bulk-000100", "page": 2})
    assert shown == [f"bulk-{i:06d}" for i in range(50, 100)] and "page 2 of 3" in body
    # A page number without its cursor (an old link) is the first page, numbered as such.
    body, shown = rows({"page": 3})
    assert shown[0] == "bulk-000000" and "page 1 of 3" in body


def test_devices_search_counts_matches_with_a_bound(login, admin, contoso, monkeypatch):
    from environment import selectors

    factories.devices(contoso, 30, prefix="bulk")
    monkeypatch.setattr(selectors, "SEARCH_COUNT_LIMIT", 20)
    body = login(admin).get(reverse("environment:devices"), {"q": "bulk"}).content.decode()
    assert "More than 20 devices match the filters" in body and "Onboard all matching" in body
    body = login(admin).get(reverse("environment:devices"), {"q": "bulk-00001"}).content.decode()
    assert "10 devices match the filters" in body and "Onboard all 10 matching" in body


def test_onboard_a_whole_group_as_a_plain_form(login, admin, env):
    servers = env["servers"]
    response = login(admin).post(reverse("environment:devices"), {"action": "onboard_matching", "group": servers.pk})
    assert response.status_code == 302
    assert f"group={servers.pk}" in response["Location"]
    assert Device.objects.filter(device_group=servers, onboarding_state=OnboardingState.NOT_ONBOARDED).count() == 0
    followed = login(admin).get(response["Location"])
    assert "Onboarded 6 devices." in followed.content.decode()
    assert AuditEvent.objects.get(action="environment.devices_onboarded").actor == admin


def test_onboard_selected_and_n_at_once(login, secadmin, env, contoso):
    client = login(secadmin)
    one = Device.objects.get(name="srv-000005")
    client.post(reverse("environment:devices"), {"action": "onboard_selected", "device": [one.pk]})
    assert Device.objects.get(pk=one.pk).onboarding_state == OnboardingState.ONBOARDED
    client.post(reverse("environment:devices"), {"action": "onboard_count", "count": "2"})
    assert sorted(
        Device.objects.filter(onboarding_state=OnboardingState.ONBOARDED, name__startswith="srv-").values_list(
            "name", flat=True
        )
    ) == ["srv-000000", "srv-000001", "srv-000005"]


def test_switch_passive_devices_of_a_group_to_active_with_htmx(login, admin, env):
    servers = env["servers"]
    response = login(admin).post(
        reverse("environment:devices"),
        {"action": "av_matching", "mode": "active", "group": servers.pk, "av": "passive"},
        **HTMX,
    )
    assert response.status_code == 200
    content = response.content.decode()
    # Only the panel partial comes back, with the outcome.
    assert "<html" not in content and 'id="env-panel"' in content
    assert "Defender Antivirus switched to active mode on 4 devices." in content
    assert not Device.objects.filter(av_mode=AntivirusMode.PASSIVE).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "onboard_selected"}, "Select at least one device first."),
        ({"action": "av_selected"}, "Select at least one device first."),
        ({"action": "onboard_count"}, "Enter how many devices to onboard."),
        ({"action": "onboard_count", "count": "0"}, "Enter at least 1 device."),
        ({"action": "onboard_count", "count": "lots"}, "Enter a whole number of devices."),
        ({"action": "av_matching"}, "Choose the antivirus mode to switch to."),
        ({"action": "av_matching", "mode": "asleep"}, "Choose active, passive or disabled."),
        ({"action": "explode"}, "Choose one of the device actions."),
        ({}, "Choose one of the device actions."),
    ],
)
def test_bad_device_actions_re_render_with_errors(login, admin, env, data, message):
    response = login(admin).post(reverse("environment:devices"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not AuditEvent.objects.filter(action__startswith="environment.").exists()


def test_onboard_matching_when_filtered_to_onboarded_does_nothing(login, admin, env):
    response = login(admin).post(
        reverse("environment:devices"), {"action": "onboard_matching", "onboarding": "onboarded"}, follow=True
    )
    assert "No devices to onboard" in response.content.decode()
    assert not AuditEvent.objects.filter(action__startswith="environment.").exists()


def test_htmx_filter_returns_the_panel_only(login, reader, env):
    response = login(reader).get(reverse("environment:devices"), {"av": "passive"}, **HTMX)
    content = response.content.decode()
    assert "<html" not in content and "srvp-000000" in content


# --- Domain controllers ---------------------------------------------------------------------------


def test_install_sensor(login, admin, env):
    dc = env["dc"]
    client = login(admin)
    response = client.post(reverse("environment:domain_controller_sensor", args=[dc.pk]), {"action": "install"})
    assert response.status_code == 302
    assert DomainController.objects.get(pk=dc.pk).sensor_installed
    assert "The Defender for Identity sensor is installed on dc01" in client.get(response["Location"]).content.decode()
    # Installing again is a clear error, not a 500.
    response = client.post(reverse("environment:domain_controller_sensor", args=[dc.pk]), {"action": "install"})
    assert response.status_code == 400 and "already has a sensor installed" in response.content.decode()
    response = client.post(reverse("environment:domain_controller_sensor", args=[dc.pk]), {"action": "reboot"})
    assert response.status_code == 400 and "Choose whether to install or remove" in response.content.decode()


def test_uninstall_sensor_with_htmx(login, admin, env):
    dc2 = DomainController.objects.get(name="dc02.corp.contoso.example")
    response = login(admin).post(
        reverse("environment:domain_controller_sensor", args=[dc2.pk]), {"action": "uninstall"}, **HTMX
    )
    assert response.status_code == 200 and "<html" not in response.content.decode()
    assert "was removed from dc02" in response.content.decode()
    assert not DomainController.objects.get(pk=dc2.pk).sensor_installed


def test_dc_page_shows_identity_counts(login, reader, env):
    content = login(reader).get(reverse("environment:domain_controllers")).content.decode()
    assert "dc01.corp.contoso.example" in content and "Not installed" in content and "Installed" in content


# --- Directory ------------------------------------------------------------------------------------


def test_directory_search_is_accent_insensitive(login, reader, env, contoso):
    factories.directory_user(contoso, "Kai Chen")
    content = login(reader).get(reverse("environment:directory"), {"q": "zoe alstrom"}).content.decode()
    assert "Zoë Ålström" in content and "Kai Chen" not in content
    content = login(reader).get(reverse("environment:directory"), {"q": "soc"}).content.decode()
    assert "SOC Team" in content


def test_disable_and_enable_a_user(login, admin, env):
    zoe = env["zoe"]
    client = login(admin)
    response = client.post(
        reverse("environment:directory_user_enabled", args=[zoe.pk]), {"enabled": "false", "q": "zoe", "page": "1"}
    )
    assert response.status_code == 302 and "q=zoe" in response["Location"]
    assert not DirectoryUser.objects.get(pk=zoe.pk).enabled
    response = client.post(reverse("environment:directory_user_enabled", args=[zoe.pk]), {"enabled": "true"}, **HTMX)
    content = response.content.decode()
    # Only the row is swapped.
    assert content.strip().startswith("<tr") and "Zoë Ålström is enabled." in content
    assert DirectoryUser.objects.get(pk=zoe.pk).enabled
    response = client.post(reverse("environment:directory_user_enabled", args=[zoe.pk]), {"enabled": "maybe"})
    assert response.status_code == 302


def test_delete_a_user_asks_first(login, admin, env):
    zoe = env["zoe"]
    client = login(admin)
    confirm = client.get(reverse("environment:directory_user_delete", args=[zoe.pk]))
    assert confirm.status_code == 200 and "Delete Zoë Ålström?" in confirm.content.decode()
    # A POST without the confirmation only asks again.
    assert client.post(reverse("environment:directory_user_delete", args=[zoe.pk])).status_code == 200
    assert DirectoryUser.objects.filter(pk=zoe.pk).exists()
    response = client.post(reverse("environment:directory_user_delete", args=[zoe.pk]), {"confirm": "yes"})
    assert response.status_code == 302
    assert not DirectoryUser.objects.filter(pk=zoe.pk).exists()
    assert AuditEvent.objects.filter(action="environment.directory_user_deleted").count() == 1


def test_create_user_and_group_with_errors_then_success(login, admin, env):
    client = login(admin)
    response = client.post(
        reverse("environment:directory_user_create"), {"display_name": "", "user_principal_name": "not-an-address"}
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "This field is required." in content and "Enter a user principal name like" in content
    response = client.post(
        reverse("environment:directory_user_create"),
        {
            "display_name": "Łukasz Wójcik",
            "user_principal_name": "lukasz.wojcik@contoso.example",
            "domain_controller": env["dc"].pk,
        },
    )
    assert response.status_code == 302
    assert DirectoryUser.objects.get(user_principal_name="lukasz.wojcik@contoso.example").domain_controller == env["dc"]
    response = client.post(
        reverse("environment:directory_group_create"), {"display_name": "SOC Team", "security_enabled": "on"}
    )
    assert response.status_code == 400 and "already exists" in response.content.decode()
    response = client.post(
        reverse("environment:directory_group_create"),
        {"display_name": "Incident Response", "mail": "ir@contoso.example", "mail_enabled": "on"},
    )
    assert response.status_code == 302
    assert DirectoryGroup.objects.get(display_name="Incident Response").mail_enabled


def test_create_user_with_another_tenants_dc_is_refused(login, admin, env, fabrikam):
    theirs = factories.domain_controller(fabrikam)
    response = login(admin).post(
        reverse("environment:directory_user_create"),
        {"display_name": "X", "user_principal_name": "x@contoso.example", "domain_controller": theirs.pk},
    )
    assert response.status_code == 400
    assert not DirectoryUser.objects.filter(user_principal_name="x@contoso.example").exists()


# --- Settings and licences ----------------------------------------------------------------------------


def test_change_a_security_setting(login, admin, contoso):
    client = login(admin)
    response = client.post(reverse("environment:settings"), {"key": "mdo.safe_links", "value": "on"})
    assert response.status_code == 302
    assert SecuritySetting.objects.get(tenant=contoso, key="mdo.safe_links").value == "on"
    assert "Safe Links is set to On." in client.get(response["Location"]).content.decode()


def test_settings_page_shows_defaults_and_values(login, reader, contoso):
    factories.setting(contoso, "mde.network_protection", "block")
    content = login(reader).get(reverse("environment:settings")).content.decode()
    assert "Network protection" in content and "Block" in content and "(default)" in content


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"key": "mde.tamper_protection", "value": "maybe"}, "Choose one of: On, Off."),
        ({"key": "mde.tamper_protection"}, "Choose a value."),
        ({"key": "nope", "value": "on"}, "isn&#x27;t a known security setting"),
    ],
)
def test_bad_setting_values_re_render_with_errors(login, admin, contoso, data, message):
    response = login(admin).post(reverse("environment:settings"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not SecuritySetting.objects.exists()


def test_change_licence_seats(login, secadmin, env, contoso):
    client = login(secadmin)
    response = client.post(reverse("environment:licences"), {"product": "mde_p2", "seats": "2500"})
    assert response.status_code == 302
    assert Licence.objects.get(tenant=contoso, product="mde_p2").seats == 2500
    response = client.post(reverse("environment:licences"), {"product": "mdi", "seats": "40"}, **HTMX)
    assert response.status_code == 200 and "Microsoft Defender for Identity: 40 seats." in response.content.decode()


@pytest.mark.parametrize(
    ("seats", "message"),
    [
        ("-5", "Seats can&#x27;t be negative."),
        ("1000001", "Enter at most 1,000,000 seats."),
        ("ten", "Enter a whole number"),
    ],
)
def test_bad_seat_counts_re_render_with_the_typed_value(login, admin, env, contoso, seats, message):
    response = login(admin).post(reverse("environment:licences"), {"product": "mde_p2", "seats": seats})
    assert response.status_code == 400
    content = response.content.decode()
    assert message in content and f'value="{seats}"' in content
    assert Licence.objects.get(tenant=contoso, product="mde_p2").seats == 20


def test_overview_summarises_everything(login, reader, env):
    content = login(reader).get(reverse("environment:overview")).content.decode()
    for text in ["Devices by device group", "Servers", "Laptops", "Domain controllers", "Licences and usage",
                 "Microsoft Defender for Endpoint P2", "1 of 2"]:  # fmt: skip
        assert text in content, text
    for name in PAGES[1:]:
        assert reverse(f"environment:{name}") in content


def test_stale_edits_get_a_conflict_message_showing_the_current_state(login, admin, secadmin, env, contoso):
    factories.setting(contoso, "mde.edr_block_mode", "on")  # someone else turned it on after the page was opened
    response = login(admin).post(
        reverse("environment:settings"), {"key": "mde.edr_block_mode", "value": "off", "expected": "off"}
    )
    assert response.status_code == 409
    content = response.content.decode()
    assert "EDR in block mode was changed to On since you opened this page" in content
    assert 'data-testid="value-mde.edr_block_mode">On<' in content
    assert SecuritySetting.objects.get(tenant=contoso, key="mde.edr_block_mode").value == "on"
    response = login(secadmin).post(
        reverse("environment:licences"), {"product": "mde_p2", "seats": "30", "expected": "25"}
    )
    assert response.status_code == 409
    assert "was changed to 20 seats since you opened this page" in response.content.decode()
    assert Licence.objects.get(tenant=contoso, product="mde_p2").seats == 20
