"""A passkey as the second factor of the Respond re-prompt, and django-axes on every factor: a refused passkey,
authenticator code or recovery code counts like a wrong password, and a locked account can't try any factor."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from permissions.selectors import access_levels_state
from tenancy.models import TenantRole, User
from tenancy.reauth import SESSION_AUTH_TIME
from tests import factories
from tests.conftest import fresh_totp_code

pytestmark = pytest.mark.django_db

PROMPT = reverse("confirm_password")
BOGUS = '{"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}'


def _passkey(user: User) -> Authenticator:
    """A stored passkey, registered as a browser would (a fresh P-256 key, "none" attestation)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from fido2.cose import ES256
    from fido2.utils import sha256, websafe_encode
    from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData, CollectedClientData

    key = ES256.from_cryptography_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    credential_id = os.urandom(32)
    auth_data = AuthenticatorData.create(
        sha256(b"testserver"),
        AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.AT,
        0,
        AttestedCredentialData.create(b"\0" * 16, credential_id, key),
    )
    client_data = CollectedClientData.create("webauthn.create", b"challenge", "http://testserver")
    registration = {
        "id": websafe_encode(credential_id),
        "rawId": websafe_encode(credential_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": websafe_encode(client_data),
            "attestationObject": websafe_encode(bytes(AttestationObject.create("none", auth_data, {}))),
        },
    }
    return Authenticator.objects.create(
        user=user, type=Authenticator.Type.WEBAUTHN, data={"name": "Laptop", "credential": registration}
    )


def _signed_in(user: User) -> Client:
    """Signed in a while ago: the sign-in no longer counts as a recent password."""
    client = Client()
    client.force_login(user)
    session = client.session
    session.pop(SESSION_AUTH_TIME, None)
    session.save()
    return client


@pytest.fixture
def passkey_only(contoso: Any) -> User:
    member = factories.member(contoso, TenantRole.GLOBAL_ADMINISTRATOR, "keys@contoso.example", mfa=False)
    _passkey(member)
    return member


def test_the_re_prompt_offers_the_passkey_of_a_user_who_has_one(passkey_only: User) -> None:
    page = _signed_in(passkey_only).get(PROMPT).content.decode()
    assert 'id="confirm_passkey"' in page and "Use a passkey" in page
    assert 'name="code"' not in page  # no authenticator app: no code to type
    assert 'id="passkey_data"' in page and "challenge" in page  # the browser's request options
    assert 'data-allauth-onload="allauth.webauthn.forms.authenticateForm"' in page


def test_the_re_prompt_offers_both_when_the_user_has_an_app_and_a_passkey(admin: User) -> None:
    _passkey(admin)
    page = _signed_in(admin).get(PROMPT).content.decode()
    assert 'name="code"' in page and 'id="confirm_passkey"' in page


def test_the_re_prompt_needs_the_passkey_not_only_the_password(passkey_only: User) -> None:
    client = _signed_in(passkey_only)
    response = client.post(PROMPT, {"password": factories.PASSWORD, "next": "/"})
    assert response.status_code == 200
    assert "Use your passkey to continue." in response.content.decode()
    assert SESSION_AUTH_TIME not in client.session


def test_a_refused_passkey_on_the_re_prompt_counts_and_locks_like_a_wrong_password(
    passkey_only: User, contoso: Any, settings: Any
) -> None:
    client = _signed_in(passkey_only)
    client.get(PROMPT)
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        response = client.post(PROMPT, {"password": factories.PASSWORD, "credential": BOGUS, "next": "/"})
        if attempt < settings.AXES_FAILURE_LIMIT:
            assert "That passkey wasn&#x27;t accepted." in response.content.decode()
        else:  # the failure that reaches the limit locks the account at once
            assert response.status_code == 429
    assert SESSION_AUTH_TIME not in client.session
    failures = AuditEvent.objects.filter(action="auth.sign_in_failed", tenant=contoso, summary__contains="(passkey)")
    assert failures.count() == settings.AXES_FAILURE_LIMIT
    assert AuditEvent.objects.filter(action="auth.locked_out", tenant=contoso).exists()
    # Locked: the password step of a new sign-in is refused too.
    login = Client().post(reverse("login"), {"login": passkey_only.email, "password": factories.PASSWORD})
    assert login.status_code == 429


def test_wrong_codes_on_the_re_prompt_lock_even_the_right_code(admin: User, contoso: Any, settings: Any) -> None:
    client = _signed_in(admin)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(PROMPT, {"password": factories.PASSWORD, "code": "000000", "next": "/"})
    response = client.post(PROMPT, {"password": factories.PASSWORD, "code": fresh_totp_code(admin), "next": "/"})
    assert response.status_code == 429 and SESSION_AUTH_TIME not in client.session
    assert AuditEvent.objects.filter(action="auth.locked_out", tenant=contoso).exists()


def test_a_refused_passkey_at_sign_in_counts_and_locks_the_other_factors_too(
    admin: User, contoso: Any, settings: Any
) -> None:
    _passkey(admin)
    client = Client()
    client.post(reverse("login"), {"login": admin.email, "password": factories.PASSWORD})
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("mfa_authenticate"), {"credential": BOGUS})
    assert (
        AuditEvent.objects.filter(action="auth.sign_in_failed", tenant=contoso, summary__contains="(passkey)").count()
        == settings.AXES_FAILURE_LIMIT
    )
    # The right authenticator code no longer helps.
    response = client.post(reverse("mfa_authenticate"), {"code": fresh_totp_code(admin)})
    assert b"Too many sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_a_used_recovery_code_counts_as_a_failure(admin: User, contoso: Any) -> None:
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    code = RecoveryCodes.activate(admin).get_unused_codes()[0]
    client = _signed_in(admin)
    ok = client.post(PROMPT, {"password": factories.PASSWORD, "code": code, "next": "/"})
    assert ok.status_code == 302
    before = AuditEvent.objects.filter(action="auth.sign_in_failed").count()
    session = client.session
    session.pop(SESSION_AUTH_TIME)
    session.save()
    again = client.post(PROMPT, {"password": factories.PASSWORD, "code": code, "next": "/"})
    assert again.status_code == 200 and "That code isn&#x27;t right." in again.content.decode()
    assert AuditEvent.objects.filter(action="auth.sign_in_failed").count() == before + 1


def test_the_respond_grant_still_needs_the_prompt(admin: User, contoso: Any) -> None:
    """The re-prompt guards Respond: without it the change waits for the password and second factor."""
    client = _signed_in(admin)
    session = client.session
    session[SESSION_AUTH_TIME] = int(time.time()) - 3600
    session.save()
    version = access_levels_state(tenant=contoso).version
    response = client.post(
        reverse("permissions:levels"), {"version": version, "investigate": "on", "respond": "on", "duration": "90"}
    )
    assert response.status_code == 302 and response["Location"].startswith(PROMPT)
    assert not access_levels_state(tenant=contoso).respond
