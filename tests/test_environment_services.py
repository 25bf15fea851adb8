"""The environment services: each rule, bulk behaviour, audit rows and timestamps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import Conflict, Invalid
from environment import services
from environment.models import (
    AntivirusMode,
    Device,
    DirectoryGroup,
    DirectoryUser,
    GroupMembership,
    Licence,
    OnboardingState,
    SecuritySetting,
)
from tenancy.models import Tenant
from tests import factories

pytestmark = pytest.mark.django_db

LONG_AGO = timezone.now() - timedelta(days=30)


@pytest.fixture
def stale(contoso: Tenant, fabrikam: Tenant) -> None:
    """Both tenants' environment timestamps far in the past, to see which one moves."""
    Tenant.objects.filter(pk__in=[contoso.pk, fabrikam.pk]).update(environment_changed_at=LONG_AGO)
    contoso.refresh_from_db()
    fabrikam.refresh_from_db()


def _bumped(tenant: Tenant) -> bool:
    return Tenant.objects.get(pk=tenant.pk).environment_changed_at > LONG_AGO


def _old(devices: list[Device]) -> None:
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(updated_at=LONG_AGO)


# --- devices_onboard ---------------------------------------------------------------------------


def test_onboard_specific_devices_sets_state_timestamps_and_audits(contoso, admin, stale):
    devs = factories.devices(contoso, 3, onboarded=False)
    _old(devs)
    n = services.devices_onboard(tenant=contoso, acting_user=admin, device_ids=[devs[0].pk, devs[1].pk])
    assert n == 2
    states = dict(Device.objects.values_list("pk", "onboarding_state"))
    assert states[devs[0].pk] == OnboardingState.ONBOARDED
    assert states[devs[2].pk] == OnboardingState.NOT_ONBOARDED
    d0 = Device.objects.get(pk=devs[0].pk)
    assert d0.onboarded_at is not None and d0.last_seen is not None and d0.updated_at > LONG_AGO
    assert Device.objects.get(pk=devs[2].pk).updated_at == LONG_AGO
    assert _bumped(contoso)
    event = AuditEvent.objects.get(action="environment.devices_onboarded")
    assert event.actor == admin and event.tenant == contoso
    assert event.before == {"onboarded": 0, "not_onboarded": 3}
    assert event.after["onboarded"] == 2 and event.after["changed"] == 2


def test_onboard_whole_group_only_touches_that_group(contoso, admin, stale):
    servers = factories.device_group(contoso, "Servers")
    laptops = factories.device_group(contoso, "Laptops")
    factories.devices(contoso, 5, group=servers, onboarded=False)
    factories.devices(contoso, 4, group=laptops, onboarded=False)
    n = services.devices_onboard(tenant=contoso, acting_user=admin, device_group=servers)
    assert n == 5
    assert Device.objects.filter(device_group=laptops, onboarding_state=OnboardingState.ONBOARDED).count() == 0
    event = AuditEvent.objects.get(action="environment.devices_onboarded")
    assert event.after["scope"]["device_group"]["name"] == "Servers"
    assert "Servers" in event.summary


def test_onboard_n_at_once_in_name_order_and_skips_already_onboarded(contoso, admin):
    factories.devices(contoso, 3, onboarded=True, prefix="a")
    factories.devices(contoso, 10, onboarded=False, prefix="b")
    assert services.devices_onboard(tenant=contoso, acting_user=admin, count=4) == 4
    onboarded_b = sorted(
        Device.objects.filter(name__startswith="b-", onboarding_state=OnboardingState.ONBOARDED).values_list(
            "name", flat=True
        )
    )
    assert onboarded_b == ["b-000000", "b-000001", "b-000002", "b-000003"]
    # Asking for more than remain onboards what remains.
    assert services.devices_onboard(tenant=contoso, acting_user=admin, count=100) == 6
    assert Device.objects.filter(onboarding_state=OnboardingState.NOT_ONBOARDED).count() == 0


def test_onboard_is_one_update_whatever_the_number_of_devices(contoso, admin):
    factories.devices(contoso, 2000, onboarded=False)
    with CaptureQueriesContext(connection) as ctx:
        services.devices_onboard(tenant=contoso, acting_user=admin, count=2000)
    updates = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]
    # One UPDATE of the devices, one of the tenant's environment_changed_at.
    assert len(updates) == 2
    assert len(ctx.captured_queries) <= 8


def test_onboard_nothing_to_do_changes_nothing(contoso, admin, stale):
    devs = factories.devices(contoso, 2, onboarded=True)
    assert services.devices_onboard(tenant=contoso, acting_user=admin, device_ids=[d.pk for d in devs]) == 0
    assert not AuditEvent.objects.exists()
    assert not _bumped(contoso)


def test_onboard_never_touches_another_tenants_devices(contoso, fabrikam, admin, stale):
    theirs = factories.devices(fabrikam, 3, onboarded=False)
    assert services.devices_onboard(tenant=contoso, acting_user=admin, device_ids=[d.pk for d in theirs]) == 0
    assert Device.objects.filter(tenant=fabrikam, onboarding_state=OnboardingState.ONBOARDED).count() == 0
    assert not _bumped(fabrikam)


def test_onboard_rejects_a_foreign_group_and_bad_input(contoso, fabrikam, admin):
    foreign = factories.device_group(fabrikam, "Theirs")
    with pytest.raises(Invalid, match="another organisation"):
        services.devices_onboard(tenant=contoso, acting_user=admin, device_group=foreign)
    with pytest.raises(Invalid, match="Choose the devices"):
        services.devices_onboard(tenant=contoso, acting_user=admin)
    for bad in (0, -1, 1_000_001, True):
        with pytest.raises(Invalid, match="how many devices"):
            services.devices_onboard(tenant=contoso, acting_user=admin, count=bad)
    with pytest.raises(Invalid, match="whole numbers"):
        services.devices_onboard(tenant=contoso, acting_user=admin, device_ids=["x"])


def test_audit_row_rolls_back_with_the_change(contoso, admin):
    factories.devices(contoso, 2, onboarded=False)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.devices_onboard(tenant=contoso, acting_user=admin, count=2)
        assert AuditEvent.objects.count() == 1
        raise RuntimeError
    assert AuditEvent.objects.count() == 0
    assert Device.objects.filter(onboarding_state=OnboardingState.ONBOARDED).count() == 0


# --- devices_set_antivirus_mode ------------------------------------------------------------------


def test_passive_devices_of_a_group_switch_to_active(contoso, admin, stale):
    group = factories.device_group(contoso, "Servers")
    other = factories.device_group(contoso, "Laptops")
    passive = factories.devices(contoso, 4, group=group, av_mode=AntivirusMode.PASSIVE)
    disabled = factories.devices(contoso, 2, group=group, av_mode=AntivirusMode.DISABLED)
    elsewhere = factories.devices(contoso, 3, group=other, av_mode=AntivirusMode.PASSIVE)
    _old(passive + disabled + elsewhere)
    n = services.devices_set_antivirus_mode(
        tenant=contoso, acting_user=admin, mode="active", device_group=group, from_mode="passive"
    )
    assert n == 4
    assert set(Device.objects.filter(pk__in=[d.pk for d in passive]).values_list("av_mode", flat=True)) == {"active"}
    assert set(Device.objects.filter(pk__in=[d.pk for d in disabled]).values_list("av_mode", flat=True)) == {"disabled"}
    assert set(Device.objects.filter(pk__in=[d.pk for d in elsewhere]).values_list("av_mode", flat=True)) == {"passive"}
    assert Device.objects.filter(pk__in=[d.pk for d in elsewhere + disabled], updated_at=LONG_AGO).count() == 5
    assert _bumped(contoso)
    event = AuditEvent.objects.get(action="environment.devices_antivirus_mode_set")
    assert event.before == {"active": 0, "passive": 7, "disabled": 2}
    assert event.after["active"] == 4 and event.after["passive"] == 3 and event.after["changed_from"] == {"passive": 4}


def test_av_mode_for_selected_devices_and_for_everything(contoso, admin):
    devs = factories.devices(contoso, 5, av_mode=AntivirusMode.ACTIVE)
    assert (
        services.devices_set_antivirus_mode(tenant=contoso, acting_user=admin, mode="disabled", device_ids=[devs[0].pk])
        == 1
    )
    assert services.devices_set_antivirus_mode(tenant=contoso, acting_user=admin, mode="passive", all_devices=True) == 5
    assert set(Device.objects.values_list("av_mode", flat=True)) == {"passive"}


def test_av_mode_validation(contoso, admin):
    factories.devices(contoso, 1)
    with pytest.raises(Invalid, match="isn't a Defender Antivirus mode"):
        services.devices_set_antivirus_mode(tenant=contoso, acting_user=admin, mode="sleepy", all_devices=True)
    with pytest.raises(Invalid, match="isn't a Defender Antivirus mode"):
        services.devices_set_antivirus_mode(tenant=contoso, acting_user=admin, mode="active", from_mode="nope")
    # No scope at all would flip the whole estate: it must be asked for explicitly.
    with pytest.raises(Invalid, match="Choose the devices"):
        services.devices_set_antivirus_mode(tenant=contoso, acting_user=admin, mode="passive")


def test_av_mode_same_mode_is_a_no_op(contoso, admin, stale):
    devs = factories.devices(contoso, 2, av_mode=AntivirusMode.ACTIVE)
    n = services.devices_set_antivirus_mode(
        tenant=contoso, acting_user=admin, mode="active", device_ids=[d.pk for d in devs]
    )
    assert n == 0 and not AuditEvent.objects.exists() and not _bumped(contoso)


# --- Domain controllers ----------------------------------------------------------------------------


def test_install_and_uninstall_sensor(contoso, admin, stale):
    dc = factories.domain_controller(contoso, "dc1.corp.contoso.example")
    factories.directory_user(contoso, domain_controller=dc)
    factories.directory_user(contoso, domain_controller=dc, enabled=False)
    services.domain_controller_install_sensor(tenant=contoso, acting_user=admin, domain_controller=dc)
    dc.refresh_from_db()
    assert dc.sensor_installed and dc.sensor_installed_at is not None
    assert _bumped(contoso)
    event = AuditEvent.objects.get(action="environment.sensor_installed")
    assert event.before == {"sensor_installed": False, "identities": 1}
    assert event.after == {"sensor_installed": True, "identities": 1}
    with pytest.raises(Invalid, match="already has a sensor"):
        services.domain_controller_install_sensor(tenant=contoso, acting_user=admin, domain_controller=dc)
    services.domain_controller_uninstall_sensor(tenant=contoso, acting_user=admin, domain_controller=dc)
    dc.refresh_from_db()
    assert not dc.sensor_installed and dc.sensor_installed_at is None
    assert AuditEvent.objects.filter(action="environment.sensor_uninstalled").count() == 1


def test_sensor_on_another_tenants_dc_is_refused(contoso, fabrikam, admin, stale):
    theirs = factories.domain_controller(fabrikam)
    with pytest.raises(Invalid):
        services.domain_controller_install_sensor(tenant=contoso, acting_user=admin, domain_controller=theirs)
    theirs.refresh_from_db()
    assert not theirs.sensor_installed and not _bumped(fabrikam)


# --- Security settings ----------------------------------------------------------------------------


def test_security_setting_set_creates_then_updates(contoso, admin, stale):
    row = services.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="on")
    assert row is not None and row.value == "on"
    assert _bumped(contoso)
    event = AuditEvent.objects.get(action="environment.security_setting_set")
    assert event.before == {"key": "mde.tamper_protection", "value": "off"}  # the catalogue default
    assert event.after == {"key": "mde.tamper_protection", "value": "on"}
    services.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="off")
    assert SecuritySetting.objects.get(tenant=contoso, key="mde.tamper_protection").value == "off"
    assert AuditEvent.objects.filter(action="environment.security_setting_set").count() == 2


def test_security_setting_unchanged_value_is_a_no_op(contoso, admin, stale):
    assert services.security_setting_set(tenant=contoso, acting_user=admin, key="mde.air_level", value="semi") is None
    assert not AuditEvent.objects.exists() and not _bumped(contoso)


def test_security_setting_rejects_unknown_key_and_value(contoso, admin):
    with pytest.raises(Invalid, match="isn't a known security setting"):
        services.security_setting_set(tenant=contoso, acting_user=admin, key="mde.nope", value="on")
    with pytest.raises(Invalid, match="isn't a valid value for Tamper protection"):
        services.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="maybe")
    assert not SecuritySetting.objects.exists()


# --- Licences -------------------------------------------------------------------------------------


def test_licence_set_seats(contoso, admin, stale):
    services.licence_set_seats(tenant=contoso, acting_user=admin, product="mde_p2", seats=1200)
    assert Licence.objects.get(tenant=contoso, product="mde_p2").seats == 1200
    services.licence_set_seats(tenant=contoso, acting_user=admin, product="mde_p2", seats=0)
    assert Licence.objects.get(tenant=contoso, product="mde_p2").seats == 0
    events = list(AuditEvent.objects.filter(action="environment.licence_seats_set").order_by("id"))
    assert [e.after["seats"] for e in events] == [1200, 0] and events[1].before["seats"] == 1200
    assert _bumped(contoso)


@pytest.mark.parametrize("seats", [-1, 1_000_001, "10", 2.5, None])
def test_licence_seats_out_of_range(contoso, admin, seats):
    with pytest.raises(Invalid, match="from 0 to 1,000,000"):
        services.licence_set_seats(tenant=contoso, acting_user=admin, product="mdi", seats=seats)


def test_licence_unknown_product(contoso, admin):
    with pytest.raises(Invalid, match="isn't a licensed product"):
        services.licence_set_seats(tenant=contoso, acting_user=admin, product="visio", seats=3)


def test_licence_max_seats_accepted(contoso, admin):
    services.licence_set_seats(tenant=contoso, acting_user=admin, product="mdi", seats=1_000_000)
    assert Licence.objects.get(tenant=contoso, product="mdi").seats == 1_000_000


# --- Directory -------------------------------------------------------------------------------------


def test_directory_user_disable_and_enable(contoso, admin, stale):
    user = factories.directory_user(contoso, "Zoë Ålström")
    DirectoryUser.objects.filter(pk=user.pk).update(updated_at=LONG_AGO)
    services.directory_user_set_enabled(tenant=contoso, acting_user=admin, directory_user=user, enabled=False)
    user.refresh_from_db()
    assert not user.enabled and user.updated_at > LONG_AGO and _bumped(contoso)
    assert AuditEvent.objects.get(action="environment.directory_user_disabled").after == {"enabled": False}
    services.directory_user_set_enabled(tenant=contoso, acting_user=admin, directory_user=user, enabled=True)
    assert DirectoryUser.objects.get(pk=user.pk).enabled


def test_directory_users_bulk_enable(contoso, admin):
    users = [factories.directory_user(contoso, enabled=False) for _ in range(3)]
    with CaptureQueriesContext(connection) as ctx:
        n = services.directory_users_set_enabled(
            tenant=contoso, acting_user=admin, directory_user_ids=[u.pk for u in users], enabled=True
        )
    assert n == 3 and DirectoryUser.objects.filter(enabled=True).count() == 3
    assert len([q for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]) == 2


def test_directory_user_delete_keeps_groups_and_audits_snapshot(contoso, admin, stale):
    user = factories.directory_user(contoso, "Renée Dubois")
    other = factories.directory_user(contoso, "Kai Chen")
    group = factories.directory_group(contoso, "SOC Team", members=[user, other])
    services.directory_user_delete(tenant=contoso, acting_user=admin, directory_user=user)
    assert not DirectoryUser.objects.filter(pk=user.pk).exists()
    assert list(GroupMembership.objects.filter(group=group).values_list("user_id", flat=True)) == [other.pk]
    event = AuditEvent.objects.get(action="environment.directory_user_deleted")
    assert event.before["display_name"] == "Renée Dubois" and event.before["groups"] == 1
    assert _bumped(contoso)


def test_directory_user_of_another_tenant_cannot_be_changed(contoso, fabrikam, admin):
    theirs = factories.directory_user(fabrikam)
    with pytest.raises(Invalid):
        services.directory_user_set_enabled(tenant=contoso, acting_user=admin, directory_user=theirs, enabled=False)
    with pytest.raises(Invalid):
        services.directory_user_delete(tenant=contoso, acting_user=admin, directory_user=theirs)
    assert DirectoryUser.objects.get(pk=theirs.pk).enabled


def test_directory_user_create_keeps_search_text(contoso, admin):
    dc = factories.domain_controller(contoso)
    user = services.directory_user_create(
        tenant=contoso,
        acting_user=admin,
        display_name="Siobhán Ní Bhriain",
        user_principal_name="Siobhan.NiBhriain@contoso.example",
        mail="siobhan@contoso.example",
        domain_controller=dc,
    )
    assert user.user_principal_name == "siobhan.nibhriain@contoso.example"
    assert "siobhan ni bhriain" in user.search_text
    assert AuditEvent.objects.filter(action="environment.directory_user_created").count() == 1
    with pytest.raises(Invalid) as exc:
        services.directory_user_create(
            tenant=contoso, acting_user=admin, display_name="Again", user_principal_name=user.user_principal_name
        )
    assert "already exists" in str(exc.value.fields["user_principal_name"])
    with pytest.raises(Invalid) as exc:
        services.directory_user_create(tenant=contoso, acting_user=admin, display_name="", user_principal_name="nope")
    assert set(exc.value.fields) == {"display_name", "user_principal_name"}


def test_directory_group_create(contoso, fabrikam, admin):
    members = [factories.directory_user(contoso) for _ in range(3)]
    group = services.directory_group_create(
        tenant=contoso,
        acting_user=admin,
        display_name="Équipe Sécurité",
        mail="securite@contoso.example",
        mail_enabled=True,
        security_enabled=False,
        members=members,
    )
    assert group.search_text.startswith("equipe securite")
    assert GroupMembership.objects.filter(group=group).count() == 3
    assert AuditEvent.objects.get(action="environment.directory_group_created").after["members"] == 3
    with pytest.raises(Invalid) as exc:
        services.directory_group_create(tenant=contoso, acting_user=admin, display_name="équipe sécurité")
    assert "already exists" in str(exc.value)
    with pytest.raises(Invalid, match="needs an email address"):
        services.directory_group_create(tenant=contoso, acting_user=admin, display_name="X", mail_enabled=True)
    with pytest.raises(Invalid, match="this organisation"):
        services.directory_group_create(
            tenant=contoso, acting_user=admin, display_name="Y", members=[factories.directory_user(fabrikam)]
        )
    assert DirectoryGroup.objects.filter(tenant=contoso).count() == 1


def test_system_changes_are_audited_as_system(contoso):
    factories.devices(contoso, 1, onboarded=False)
    services.devices_onboard(tenant=contoso, acting_user=None, count=1)
    event = AuditEvent.objects.get()
    assert event.actor is None and event.actor_label == "system"


def test_stale_setting_edit_is_refused_with_the_current_value(contoso, admin, secadmin):
    # Both admins saw the default "Off"; the first save wins.
    services.security_setting_set(
        tenant=contoso, acting_user=secadmin, key="mdo.safe_links", value="on", expected_value="off"
    )
    with pytest.raises(Conflict, match="was changed to On since you opened this page") as exc:
        services.security_setting_set(
            tenant=contoso, acting_user=admin, key="mdo.safe_links", value="off", expected_value="off"
        )
    assert isinstance(exc.value, Conflict)
    assert SecuritySetting.objects.get(tenant=contoso, key="mdo.safe_links").value == "on"
    assert AuditEvent.objects.filter(action="environment.security_setting_set").count() == 1


def test_stale_first_save_of_a_setting_rolls_back_the_new_row(contoso, admin):
    with pytest.raises(Conflict):
        services.security_setting_set(
            tenant=contoso, acting_user=admin, key="mdo.safe_links", value="on", expected_value="on"
        )
    assert not SecuritySetting.objects.exists()


def test_stale_seat_count_is_refused(contoso, admin, secadmin):
    factories.licence(contoso, "mdi", 100)
    services.licence_set_seats(tenant=contoso, acting_user=secadmin, product="mdi", seats=150, expected_seats=100)
    with pytest.raises(Conflict, match="was changed to 150 seats"):
        services.licence_set_seats(tenant=contoso, acting_user=admin, product="mdi", seats=90, expected_seats=100)
    assert Licence.objects.get(tenant=contoso, product="mdi").seats == 150
