"""The welcome email's link: signed, expiring, revocable, members only."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from onboarding.links import token_for_nonce
from onboarding.models import Invitation
from onboarding.services import invitation_send
from outbox.services import outbox_deliver, outbox_due_ids
from tenancy.middleware import SESSION_TENANT_KEY
from tenancy.models import Membership, ServicePhase, TenantRole
from tests import factories
from tests.test_onboarding_invite import welcome_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def link(contoso, sdm, admin, secadmin) -> str:
    invitation_send(tenant=contoso, acting_user=sdm)
    for message_id in outbox_due_ids():
        outbox_deliver(message_id=message_id)
    url = welcome_link(mail.outbox[-1])
    return url[url.index("/settings/") :]


def test_anonymous_goes_to_sign_in_and_comes_back(client, link, admin, contoso):
    response = client.get(link)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={link.replace(':', '%3A')}"
    # The sign-in page says why, naming no organization (the link may have been forwarded).
    page = client.get(response["Location"]).content.decode()
    assert "Sign in to open the Defender Experts Get started guide from your welcome email." in page
    assert "Contoso" not in page
    password_step = client.post(response["Location"], {"login": admin.email, "password": factories.PASSWORD})
    assert password_step["Location"] == reverse("mfa_authenticate")
    signed_in = client.post(reverse("mfa_authenticate"), {"code": factories.totp_code()}, follow=True)
    # Sign-in (password, then the second factor) -> the link -> Get started -> the current step.
    assert signed_in.redirect_chain[0][0] == link
    # The welcome link lands on the Get started page, the guide's overview, before Permissions.
    assert signed_in.redirect_chain[-1][0] == reverse("onboarding:overview")
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.SETTING_UP
    invitation = Invitation.objects.get(tenant=contoso)
    assert invitation.first_opened_by == admin
    assert AuditEvent.objects.filter(tenant=contoso, action="onboarding.welcome_link_opened", actor=admin).exists()


def test_a_reader_following_the_link_sees_the_guide_but_does_not_start_it(login, link, contoso, reader):
    client = login(reader)
    response = client.get(link, follow=True)
    assert response.status_code == 200
    assert b"Only a Global Administrator or a Security Administrator can complete this guide." in response.content
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.INVITED


def test_expired_link_explains_what_to_do(login, link, contoso, admin, settings):
    client = login(admin)
    with time_machine.travel(timezone.now() + dt.timedelta(days=14, minutes=1)):
        client.force_login(admin)
        response = client.get(link)
    assert response.status_code == 410
    html = response.content.decode()
    assert "This link has expired" in html
    assert "resend the welcome email" in html
    assert "Get started" in html and reverse("onboarding:get_started") in html
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.INVITED


def test_expired_link_is_explained_even_before_signing_in(client, link):
    with time_machine.travel(timezone.now() + dt.timedelta(days=15)):
        response = client.get(link)
    assert response.status_code == 410
    assert b"This link has expired" in response.content
    assert b"Contoso" not in response.content


def test_link_still_works_just_before_it_expires(login, link, contoso, admin):
    with time_machine.travel(timezone.now() + dt.timedelta(days=13, hours=23)):
        client = login(admin)
        response = client.get(link)
    assert response.status_code == 302 and response["Location"] == reverse("onboarding:overview")


def test_link_max_age_is_a_setting(login, link, admin, settings):
    settings.ONBOARDING_LINK_MAX_AGE = 3600
    with time_machine.travel(timezone.now() + dt.timedelta(hours=2)):
        response = login(admin).get(link)
    assert response.status_code == 410


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),  # signature changed
        lambda t: "x" + t,  # nonce changed
        lambda t: t.split(":")[0],  # signature cut off
        lambda t: "not-a-token",
    ],
)
def test_tampered_link_explains_what_to_do(login, link, contoso, admin, mangle):
    token = link.rstrip("/").rsplit("/", 1)[1]
    bad = reverse("onboarding:invitation", kwargs={"token": mangle(token)})
    response = login(admin).get(bad)
    assert response.status_code == 404
    html = response.content.decode()
    assert "This link isn't valid" in html
    assert "resend the welcome email" in html
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.INVITED


def test_a_correctly_signed_but_unknown_nonce_is_invalid(login, link, admin):
    bad = reverse("onboarding:invitation", kwargs={"token": token_for_nonce("guessed-nonce")})
    response = login(admin).get(bad)
    assert response.status_code == 404
    assert b"This link isn't valid" in response.content


def test_a_member_of_another_tenant_gets_a_refusal_that_leaks_nothing(login, link, contoso, outsider):
    response = login(outsider).get(link)
    assert response.status_code == 404
    html = response.content.decode()
    assert "This link isn't for your account" in html
    for secret in ("Contoso", "contoso.example", "admin@contoso"):
        assert secret not in html
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.INVITED
    assert Invitation.objects.get(tenant=contoso).first_opened_at is None
    # "Sign out and use another account" comes back to the link, which then asks to sign in.
    client = login(outsider)
    signed_out = client.post(reverse("logout"), {"next": link})
    assert signed_out["Location"] == link
    assert client.get(link)["Location"].startswith(reverse("login"))


def test_provider_staff_cannot_open_a_tenants_link(login, link, contoso, sdm):
    response = login(sdm).get(link)
    assert response.status_code == 404
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.INVITED


def test_a_member_of_two_tenants_lands_in_the_invited_one(login, link, contoso, fabrikam, outsider):
    Membership.objects.create(user=outsider, tenant=contoso, role=TenantRole.SECURITY_ADMINISTRATOR)
    client = login(outsider)
    session = client.session
    session[SESSION_TENANT_KEY] = fabrikam.pk
    session.save()
    response = client.get(link, follow=True)
    assert response.status_code == 200
    assert client.session[SESSION_TENANT_KEY] == contoso.pk
    assert b'data-testid="tenant-name">Contoso' in response.content
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.SETTING_UP


def test_opening_the_link_twice_records_the_first_opening_only(login, link, contoso, admin, secadmin):
    login(admin).get(link)
    login(secadmin).get(link)
    invitation = Invitation.objects.get(tenant=contoso)
    assert invitation.first_opened_by == admin
    assert AuditEvent.objects.filter(tenant=contoso, action="onboarding.welcome_link_opened").count() == 1
