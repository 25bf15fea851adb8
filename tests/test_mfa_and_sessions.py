"""Multi-factor sign-in rules and signed-in sessions.

* Who must enrol: roles that can change settings when the tenant requires it
  (on by default), provider staff and operators always; readers may.
* Sensitive steps (the Respond re-prompt) ask for the second factor when one is enrolled.
* Sessions: listed with device, IP, sign-in and last activity; a user signs out
  their other sessions; an admin signs a member out everywhere; a role change
  or a removed membership ends the member's sessions at once; idle (1 h) and
  absolute (8 h) limits.
"""

from __future__ import annotations

import time

import pytest
from allauth.usersessions.models import UserSession
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tenancy.models import Membership, TenantRole, User
from tenancy.services import membership_remove, membership_set_role
from tenancy.sessions import SESSION_ACTIVITY_AT, SESSION_SIGNED_IN_AT
from tests import factories
from tests.conftest import fresh_totp_code
from tests.factories import PASSWORD, totp_code

pytestmark = pytest.mark.django_db

HOME = reverse("onboarding:index")
MFA = reverse("mfa_index")


def test_an_admin_without_a_second_factor_is_sent_to_the_guided_enrolment(client, contoso):
    admin = factories.member(contoso, TenantRole.GLOBAL_ADMINISTRATOR, "new-admin@contoso.example", mfa=False)
    client.force_login(admin)
    response = client.get(HOME)
    assert response.status_code == 302 and response["Location"] == MFA
    page = client.get(MFA).content.decode()
    assert "Your organisation requires multi-factor sign-in for your role" in page
    assert "Set up an authenticator app" in page
    # htmx requests are redirected the htmx way.
    assert client.get(HOME, HTTP_HX_REQUEST="true")["HX-Redirect"] == MFA


def test_enrolling_totp_through_the_pages_lets_the_admin_in(client, contoso, django_capture_on_commit_callbacks):
    admin = factories.member(contoso, TenantRole.SECURITY_ADMINISTRATOR, "enrol@contoso.example", mfa=False)
    client.force_login(admin)
    # Enrolling is sensitive: allauth asks for the password first (a real sign-in just did).
    response = client.get(reverse("mfa_activate_totp"))
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    client.post(response["Location"], {"password": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret
    with django_capture_on_commit_callbacks(execute=True):  # allauth announces the new factor on commit
        response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    # Recovery codes come with the app, and the portal opens.
    assert client.get(reverse("mfa_view_recovery_codes")).status_code == 200
    assert client.get(HOME).status_code == 200


def test_a_reader_may_sign_in_without_a_second_factor(client, contoso):
    reader = factories.member(contoso, TenantRole.SECURITY_READER, "r2@contoso.example", mfa=False)
    client.force_login(reader)
    assert client.get(HOME).status_code == 200


def test_provider_staff_always_need_a_second_factor(client):
    staff = factories.staff(email="new-sdm@experts.example", mfa=False)
    client.force_login(staff)
    assert client.get(reverse("onboarding_provider:console"))["Location"] == MFA


def test_the_tenant_setting_can_make_it_optional_for_admins_and_is_audited(login, admin, contoso):
    client = login(admin)
    response = client.post(reverse("mfa_policy"), {})
    assert response.status_code == 302
    contoso.refresh_from_db()
    assert contoso.require_mfa_for_admins is False
    event = AuditEvent.objects.get(action="tenant.mfa_requirement_changed")
    assert event.tenant == contoso and event.after == {"require_mfa_for_admins": False}
    newcomer = factories.member(contoso, TenantRole.GLOBAL_ADMINISTRATOR, "n@contoso.example", mfa=False)
    other = Client()
    other.force_login(newcomer)
    assert other.get(HOME).status_code == 200


def test_an_admin_who_must_enrol_cannot_switch_the_rule_off_instead(client, contoso):
    admin = factories.member(contoso, TenantRole.GLOBAL_ADMINISTRATOR, "dodger@contoso.example", mfa=False)
    client.force_login(admin)
    assert client.post(reverse("mfa_policy"), {})["Location"] == MFA
    contoso.refresh_from_db()
    assert contoso.require_mfa_for_admins is True


def test_only_admins_change_the_tenant_setting(login, reader, contoso):
    assert login(reader).post(reverse("mfa_policy"), {}).status_code == 403
    contoso.refresh_from_db()
    assert contoso.require_mfa_for_admins is True


def test_the_respond_re_prompt_asks_for_the_second_factor(login, admin):
    client = login(admin)
    url = reverse("confirm_password") + "?next=/settings/defender-experts/permissions/"
    page = client.get(url).content.decode()
    assert "Authenticator code" in page
    response = client.post(url, {"password": PASSWORD, "next": "/settings/defender-experts/permissions/"})
    assert response.status_code == 200 and "Enter the code from your authenticator app." in response.content.decode()
    response = client.post(url, {"password": PASSWORD, "code": "000000", "next": "/x/"})
    assert "That code isn&#x27;t right" in response.content.decode()
    response = client.post(
        url, {"password": PASSWORD, "code": totp_code(), "next": "/settings/defender-experts/permissions/"}
    )
    assert response.status_code == 302


def test_the_re_prompt_without_an_enrolled_factor_asks_only_for_the_password(client, contoso):
    reader = factories.member(contoso, TenantRole.SECURITY_READER, "plain@contoso.example", mfa=False)
    client.force_login(reader)
    assert "Authenticator code" not in client.get(reverse("confirm_password")).content.decode()


# --- Sessions ---------------------------------------------------------------------------


def _signed_in(user: User, agent: str = "Firefox/133.0", ip: str = "198.51.100.4") -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    client.post(reverse("login"), {"login": user.email, "password": PASSWORD})
    client.post(reverse("mfa_authenticate"), {"code": fresh_totp_code(user)})
    assert "_auth_user_id" in client.session
    return client


def test_the_sessions_page_lists_device_ip_sign_in_and_last_activity(admin):
    laptop = _signed_in(admin, "Edg/131.0 laptop", "198.51.100.4")
    _signed_in(admin, "iPhone Safari", "203.0.113.9")
    page = laptop.get(reverse("usersessions_list")).content.decode()
    assert "Edg/131.0 laptop" in page and "iPhone Safari" in page
    assert "198.51.100.4" in page and "203.0.113.9" in page
    assert "This session" in page and "Last activity" in page


def test_a_user_signs_out_their_other_sessions(admin):
    laptop = _signed_in(admin, "laptop")
    phone = _signed_in(admin, "phone")
    assert UserSession.objects.filter(user=admin).count() == 2
    laptop.post(reverse("usersessions_list"))
    assert UserSession.objects.filter(user=admin).count() == 1
    assert phone.get(HOME).status_code == 302  # signed out
    assert laptop.get(HOME).status_code == 200


def test_an_admin_signs_a_member_out_everywhere(login, admin, reader, contoso):
    reader_client = _signed_in(reader)
    membership = Membership.objects.get(user=reader)
    client = login(admin)
    page = client.get(reverse("usersessions_list")).content.decode()
    assert "Sign reader@contoso.example out everywhere" in page
    response = client.post(reverse("member_sessions_end", args=[membership.pk]))
    assert response.status_code == 302
    assert not UserSession.objects.filter(user=reader).exists()
    assert reader_client.get(HOME).status_code == 302
    event = AuditEvent.objects.get(action="tenant.member_signed_out")
    assert event.tenant == contoso and event.after["sessions_ended"] == 1


def test_another_tenants_admin_cannot_sign_out_our_members(login, outsider, reader):
    membership = Membership.objects.get(user=reader)
    assert login(outsider).post(reverse("member_sessions_end", args=[membership.pk])).status_code == 404


def test_a_reader_cannot_sign_out_others(login, reader, admin):
    membership = Membership.objects.get(user=admin)
    assert login(reader).post(reverse("member_sessions_end", args=[membership.pk])).status_code == 403


def test_a_role_change_ends_the_members_sessions_at_once(admin, reader):
    reader_client = _signed_in(reader)
    membership_set_role(
        membership=Membership.objects.get(user=reader), acting_user=admin, role=TenantRole.SECURITY_OPERATOR
    )
    assert reader_client.get(HOME).status_code == 302
    assert AuditEvent.objects.get(action="tenant.member_role_changed").after["sessions_ended"] == 1


def test_a_removed_membership_ends_the_members_sessions_at_once(admin, reader):
    reader_client = _signed_in(reader)
    membership_remove(membership=Membership.objects.get(user=reader), acting_user=admin)
    assert reader_client.get(HOME).status_code == 302
    assert not Membership.objects.filter(user=reader).exists()


@pytest.mark.parametrize(
    ("key", "age", "message"),
    [(SESSION_ACTIVITY_AT, 3601, "an hour without activity"), (SESSION_SIGNED_IN_AT, 8 * 3600 + 1, "maximum length")],
)
def test_idle_and_absolute_limits_end_the_session(admin, key, age, message):
    client = _signed_in(admin)
    session = client.session
    session[key] = int(time.time()) - age
    session.save()
    response = client.get(HOME, follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    assert message in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_last_activity_is_written_at_most_once_per_resolution(admin, settings):
    settings.SESSION_ACTIVITY_RESOLUTION = 60
    client = _signed_in(admin)
    row = UserSession.objects.get(user=admin)
    session = client.session
    session[SESSION_ACTIVITY_AT] = int(time.time()) - 61
    session.save()
    client.get(HOME, HTTP_USER_AGENT="Moved/2.0", REMOTE_ADDR="192.0.2.44")
    moved = UserSession.objects.get(pk=row.pk)
    assert moved.last_seen_at > row.last_seen_at and moved.ip == "192.0.2.44" and moved.user_agent == "Moved/2.0"
    client.get(HOME, HTTP_USER_AGENT="Again/3.0")  # within the minute: not written
    assert UserSession.objects.get(pk=row.pk).user_agent == "Moved/2.0"
