"""``seed_demo``: the demo data's counts, idempotency and determinism."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from demo.seed import seed_demo
from environment import selectors
from environment.models import (
    AntivirusMode,
    Device,
    DeviceGroup,
    DirectoryGroup,
    DirectoryUser,
    DomainController,
    GroupMembership,
    Licence,
    OnboardingState,
    SecuritySetting,
)
from environment.security_settings import SETTINGS
from tenancy.models import Membership, ProviderStaff, Tenant, TenantRole, User

pytestmark = pytest.mark.django_db


def snapshot(tenant: Tenant) -> dict[str, object]:
    """Everything seed_demo decides, without ids or timestamps."""
    return {
        "devices": sorted(
            Device.objects.filter(tenant=tenant).values_list(
                "name", "os_platform", "onboarding_state", "av_mode", "device_group__name"
            )
        ),
        "users": sorted(
            DirectoryUser.objects.filter(tenant=tenant).values_list(
                "user_principal_name", "display_name", "enabled", "job_title", "domain_controller__name", "search_text"
            )
        ),
        "groups": sorted(
            DirectoryGroup.objects.filter(tenant=tenant).values_list(
                "display_name", "mail", "mail_enabled", "security_enabled"
            )
        ),
        "members": sorted(
            GroupMembership.objects.filter(group__tenant=tenant).values_list(
                "group__display_name", "user__user_principal_name"
            )
        ),
        "dcs": sorted(DomainController.objects.filter(tenant=tenant).values_list("name", "sensor_installed")),
        "device_groups": sorted(DeviceGroup.objects.filter(tenant=tenant).values_list("name", "rank")),
        "licences": sorted(Licence.objects.filter(tenant=tenant).values_list("product", "seats")),
        "settings": sorted(SecuritySetting.objects.filter(tenant=tenant).values_list("key", "value")),
    }


def everything() -> dict[str, object]:
    return {t.primary_domain: snapshot(t) for t in Tenant.objects.order_by("primary_domain")}


@pytest.fixture
def seeded(db):
    seed_demo(seed=42, devices=1500, reset=False)
    return Tenant.objects.get(primary_domain="contoso.example")


def test_people_roles_and_passwords(seeded):
    roles = dict(Membership.objects.filter(tenant=seeded).values_list("user__email", "role"))
    assert roles == {
        "admin@contoso.example": TenantRole.GLOBAL_ADMINISTRATOR,
        "secadmin@contoso.example": TenantRole.SECURITY_ADMINISTRATOR,
        "operator@contoso.example": TenantRole.SECURITY_OPERATOR,
        "reader@contoso.example": TenantRole.SECURITY_READER,
    }
    fabrikam = Tenant.objects.get(primary_domain="fabrikam.example")
    assert fabrikam.name == "Fabrikam" and seeded.name == "Contoso"
    assert Membership.objects.get(tenant=fabrikam).user.email == "admin@fabrikam.example"
    sdm = ProviderStaff.objects.select_related("user", "organization").get()
    assert sdm.user.email == "sdm@experts.example" and sdm.is_service_delivery_manager
    assert sdm.user.display_name == "Sam Delgado"
    assert sdm.organization.name == "Microsoft Defender Experts" and sdm.organization.domain == "experts.example"
    for user in User.objects.all():
        assert user.check_password(settings.DEMO_PASSWORD), user.email


def test_contoso_directory(seeded):
    users = DirectoryUser.objects.filter(tenant=seeded)
    assert users.count() >= 300
    assert users.filter(enabled=False).count() >= 5
    hybrid = users.filter(domain_controller__isnull=False).count()
    assert hybrid > users.count() / 2  # most users are hybrid identities
    names = list(users.values_list("display_name", flat=True))
    assert any(ch in "".join(names) for ch in "éëüöøåñçłś")  # some names have accents
    assert len(set(names)) > 250  # varied, not "User 1..N"
    assert DirectoryUser.objects.filter(tenant=seeded, user_principal_name="admin@contoso.example").exists()
    # search_text is kept, accent-free: searching "zoe" finds every "Zoë".
    zoes = users.filter(display_name__startswith="Zoë").count()
    assert (
        zoes
        and selectors.directory_users(tenant=seeded, q="zoe").filter(display_name__startswith="Zoë").count() == zoes
    )
    groups = DirectoryGroup.objects.filter(tenant=seeded)
    assert groups.count() >= 25
    soc = groups.get(display_name="SOC Team")
    assert soc.mail_enabled and soc.mail == "soc@contoso.example"
    assert GroupMembership.objects.filter(group=soc).count() >= 8
    assert groups.filter(display_name="IT Security Operations", mail_enabled=True).exists()
    assert groups.filter(mail_enabled=False, security_enabled=True).count() >= 5


def test_contoso_devices_dcs_licences_and_settings(seeded):
    devices = Device.objects.filter(tenant=seeded)
    assert devices.count() == 1500
    assert DeviceGroup.objects.filter(tenant=seeded).count() == 6
    assert devices.filter(device_group__isnull=True).count() == 0
    assert devices.filter(onboarding_state=OnboardingState.NOT_ONBOARDED).count() > 50
    assert devices.filter(av_mode=AntivirusMode.PASSIVE).count() > 30
    assert devices.filter(av_mode=AntivirusMode.DISABLED).count() > 0
    assert len(set(devices.values_list("os_platform", flat=True))) == 6
    dcs = DomainController.objects.filter(tenant=seeded)
    assert dcs.count() == 4 and dcs.filter(sensor_installed=True).count() == 2

    counts = selectors.device_counts(tenant=seeded)
    identities = selectors.identity_counts(tenant=seeded)
    seats = dict(Licence.objects.filter(tenant=seeded).values_list("product", "seats"))
    assert set(seats) == {"mde_p2", "mdi", "mdo_p2", "entra_p1", "entra_p2"}
    # The visible gaps the demo relies on.
    assert seats["mde_p2"] > counts.protected
    assert seats["mdi"] > identities.protected
    assert seats["entra_p1"] < identities.enabled_users

    values = dict(SecuritySetting.objects.filter(tenant=seeded).values_list("key", "value"))
    assert set(values) == {s.key for s in SETTINGS}
    assert "on" in values.values() and "off" in values.values()


def test_fabrikam_is_small(seeded):
    fabrikam = Tenant.objects.get(primary_domain="fabrikam.example")
    assert 15 <= DirectoryUser.objects.filter(tenant=fabrikam).count() <= 25
    assert DirectoryGroup.objects.filter(tenant=fabrikam).count() == 3
    assert Device.objects.filter(tenant=fabrikam).count() == 40
    assert DomainController.objects.filter(tenant=fabrikam).count() == 1
    # Nothing of Contoso's leaks into Fabrikam's directory.
    assert not DirectoryUser.objects.filter(tenant=fabrikam, user_principal_name__endswith="contoso.example").exists()


def test_running_twice_gives_the_same_state(seeded):
    before = everything()
    users_before = sorted(User.objects.values_list("email", "display_name"))
    summary = seed_demo(seed=42, devices=1500, reset=False)
    assert everything() == before
    assert sorted(User.objects.values_list("email", "display_name")) == users_before
    assert all(not any(created.values()) for created in summary.created.values())


def test_rerun_leaves_changes_made_in_the_portal_but_reset_restores(seeded):
    before = everything()
    Device.objects.filter(tenant=seeded).update(onboarding_state=OnboardingState.ONBOARDED)
    seed_demo(seed=42, devices=1500, reset=False)
    assert not Device.objects.filter(tenant=seeded, onboarding_state=OnboardingState.NOT_ONBOARDED).exists()
    seed_demo(seed=42, devices=1500, reset=True)
    assert everything() == before


def test_same_seed_same_data_other_seed_other_data(seeded):
    first = everything()
    seed_demo(seed=42, devices=1500, reset=True)
    assert everything() == first
    seed_demo(seed=7, devices=1500, reset=True)
    other = everything()
    assert other["contoso.example"]["users"] != first["contoso.example"]["users"]
    assert other["contoso.example"]["devices"] != first["contoso.example"]["devices"]


def test_devices_rescale_deterministically(seeded):
    original = snapshot(seeded)
    seed_demo(seed=42, devices=3000, reset=False)
    assert Device.objects.filter(tenant=seeded).count() == 3000
    assert Licence.objects.get(tenant=seeded, product="mde_p2").seats >= 3000
    # Users don't move when only the device count changes.
    assert snapshot(seeded)["users"] == original["users"]
    seed_demo(seed=42, devices=1500, reset=False)
    assert snapshot(seeded) == original


def test_the_command_prints_a_summary(db):
    out = StringIO()
    call_command("seed_demo", "--seed", "42", "--devices", "200", stdout=out)
    text = out.getvalue()
    assert "Contoso:" in text and "200 devices" in text and "Fabrikam:" in text and "sdm@experts.example" in text
    assert Device.objects.filter(tenant__primary_domain="contoso.example").count() == 200


def test_if_missing_skips_when_the_demo_exists(db):
    out = StringIO()
    call_command("seed_demo", "--if-missing", "--devices", "30", stdout=out)
    assert Device.objects.filter(tenant__primary_domain="contoso.example").count() == 30
    out = StringIO()
    call_command("seed_demo", "--if-missing", "--devices", "60", stdout=out)
    assert "already present" in out.getvalue()
    assert Device.objects.filter(tenant__primary_domain="contoso.example").count() == 30


def test_contoso_is_invited_for_real_once(django_capture_on_commit_callbacks):
    from onboarding.models import Invitation
    from outbox.models import OutboxMessage

    with django_capture_on_commit_callbacks(execute=False):
        seed_demo(seed=42, devices=50)
        seed_demo(seed=42, devices=50)
    contoso = Tenant.objects.get(primary_domain="contoso.example")
    fabrikam = Tenant.objects.get(primary_domain="fabrikam.example")
    assert contoso.service_phase == "invited" and fabrikam.service_phase == "not_invited"
    invitation = Invitation.objects.get(tenant=contoso)
    assert invitation.invited_by.email == "sdm@experts.example"
    assert sorted(invitation.recipients) == ["admin@contoso.example", "secadmin@contoso.example"]
    assert OutboxMessage.objects.filter(tenant=contoso, kind="onboarding.welcome").count() == 1
    assert not Invitation.objects.filter(tenant=fabrikam).exists()
