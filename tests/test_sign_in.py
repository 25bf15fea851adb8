"""Sign-in, sign-out, throttling and the auth trail."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.factories import PASSWORD, totp_code

pytestmark = pytest.mark.django_db


def test_anonymous_is_redirected_to_sign_in(client):
    response = client.get(reverse("onboarding:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def _password(client, email, password, **extra):
    return client.post(reverse("login"), {"login": email, "password": password}, **extra)


def _code(client, code, **extra):
    return client.post(reverse("mfa_authenticate"), {"code": code}, **extra)


def test_sign_in_asks_for_the_second_factor_then_lands_on_defender_experts_settings(client, admin):
    response = _password(client, admin.email, PASSWORD)
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session  # not signed in on the password alone
    response = _code(client, totp_code(), follow=True)
    assert response.redirect_chain[-1][0] == reverse("onboarding:index")
    assert b"Contoso" in response.content
    assert AuditEvent.objects.filter(action="auth.sign_in", actor=admin).count() == 1


def test_wrong_password_shows_a_clear_message_and_is_logged(client, admin):
    response = _password(client, admin.email, "nope")
    assert response.status_code == 200
    assert b"don&#x27;t match an account" in response.content
    assert AuditEvent.objects.filter(action="auth.sign_in_failed", actor_label=admin.email).count() == 1


def test_a_wrong_code_is_refused_and_logged_as_a_failed_sign_in(client, admin, contoso):
    _password(client, admin.email, PASSWORD)
    response = _code(client, "000000")
    assert response.status_code == 200 and b"Incorrect code." in response.content
    assert "_auth_user_id" not in client.session
    failed = AuditEvent.objects.get(action="auth.sign_in_failed", tenant=contoso)
    assert "authenticator code" in failed.summary


def test_sign_out_is_logged(login, admin):
    client = login(admin)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="auth.sign_out", actor=admin).count() == 1


def test_repeated_failures_lock_the_account_even_with_the_right_password(client, admin, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _password(client, admin.email, "wrong-password")
    response = _password(client, admin.email, PASSWORD)
    assert response.status_code == 429
    assert b"Too many sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_axes_throttles_the_second_factor_too(client, admin, contoso, settings):
    """Wrong codes count like wrong passwords; once locked, even the right code is refused."""
    _password(client, admin.email, PASSWORD)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _code(client, "000000")
    response = _code(client, totp_code())
    assert b"Too many sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.locked_out", tenant=contoso).exists()
    # And the password step is locked as well.
    assert _password(Client(), admin.email, PASSWORD).status_code == 429


def test_provider_staff_land_on_the_provider_console(client, sdm):
    _password(client, sdm.email, PASSWORD)
    response = _code(client, totp_code())
    assert response["Location"] == reverse("home")
    assert client.get(reverse("home"))["Location"] == reverse("onboarding_provider:console")


def test_sign_in_records_the_client_address(client, admin, settings):
    _password(client, admin.email, PASSWORD, REMOTE_ADDR="203.0.113.7")
    _code(client, totp_code(), REMOTE_ADDR="203.0.113.7")
    assert AuditEvent.objects.get(action="auth.sign_in").ip_address == "203.0.113.7"


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "198.51.100.1", "10.0.0.2"),  # no trusted proxy: a forwarded header is ignored
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # a client-forged entry on the left is ignored
        (2, "198.51.100.1", "10.0.0.2"),  # fewer entries than trusted hops
        (1, "not-an-ip", "10.0.0.2"),
    ],
)
def test_client_ip_trusts_only_our_own_proxies(rf, settings, hops, forwarded, expected):
    from tenancy.request_ip import client_ip

    settings.TRUSTED_PROXY_HOPS = hops
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
