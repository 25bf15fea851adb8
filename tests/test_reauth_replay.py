"""After the "Confirm your password" prompt the change that asked for it completes: no second Save."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from core.replay import PENDING_POST_MAX_AGE, SESSION_PENDING_POST
from permissions.models import AccessGrant
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set
from tenancy.reauth import SESSION_AUTH_TIME
from tests import factories
from tests.conftest import fresh_totp_code

pytestmark = pytest.mark.django_db

LEVELS = reverse("permissions:levels")
PROMPT = reverse("confirm_password")


def _stale(client):
    session = client.session
    session[SESSION_AUTH_TIME] = int(time.time()) - 16 * 60
    session.save()
    return client


def _granted(contoso, admin):
    access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=1)


def _ask_for_respond(client, contoso):
    v = access_levels_state(tenant=contoso).version
    response = client.post(LEVELS, {"version": v, "investigate": "on", "respond": "on", "duration": "90"})
    assert response.status_code == 302 and response["Location"].startswith(PROMPT)
    return parse_qs(urlparse(response["Location"]).query)["next"][0]


def test_confirming_the_password_completes_the_change(login, contoso, admin):
    _granted(contoso, admin)
    client = _stale(login(admin))
    nxt = _ask_for_respond(client, contoso)
    assert not access_levels_state(tenant=contoso).respond
    response = client.post(
        PROMPT + "?next=" + nxt,
        {"password": factories.PASSWORD, "code": fresh_totp_code(admin), "next": nxt},
        follow=True,
    )
    state = access_levels_state(tenant=contoso)
    assert state.respond and state.grants["respond"].days_left == 90
    assert "Access levels saved." in response.content.decode()
    assert SESSION_PENDING_POST not in client.session  # replayed once


def test_a_wrong_password_replays_nothing(login, contoso, admin):
    _granted(contoso, admin)
    client = _stale(login(admin))
    nxt = _ask_for_respond(client, contoso)
    response = client.post(PROMPT, {"password": "wrong-password-123", "next": nxt})
    assert response.status_code == 200
    assert not access_levels_state(tenant=contoso).respond


def test_an_old_pending_change_is_not_replayed(login, contoso, admin):
    _granted(contoso, admin)
    client = _stale(login(admin))
    nxt = _ask_for_respond(client, contoso)
    session = client.session
    session[SESSION_PENDING_POST]["at"] -= PENDING_POST_MAX_AGE + 1
    session.save()
    response = client.post(PROMPT, {"password": factories.PASSWORD, "code": fresh_totp_code(admin), "next": nxt})
    assert response.status_code == 302 and response["Location"] == nxt  # back to the page, choice shown again
    assert not access_levels_state(tenant=contoso).respond


def test_the_replay_rechecks_the_version(login, contoso, admin, secadmin):
    _granted(contoso, admin)
    client = _stale(login(admin))
    nxt = _ask_for_respond(client, contoso)
    # Someone else changes the access levels while the prompt is open.
    v = access_levels_state(tenant=contoso).version
    access_levels_set(
        tenant=contoso,
        acting_user=secadmin,
        investigate=False,
        respond=False,
        expected_version=v,
        confirm_reduced_access=True,
    )
    response = client.post(PROMPT, {"password": factories.PASSWORD, "code": fresh_totp_code(admin), "next": nxt})
    assert response.status_code == 409
    assert not access_levels_state(tenant=contoso).respond
    assert not AccessGrant.objects.filter(level="respond", revoked_at__isnull=True).exists()


def test_the_replay_is_this_users_and_rechecks_the_role(login, contoso, admin, reader):
    _granted(contoso, admin)
    client = _stale(login(reader))
    session = client.session
    session[SESSION_PENDING_POST] = {
        "path": LEVELS,
        "fields": [["version", ["2"]], ["respond", ["on"]]],
        "at": int(time.time()),
    }
    session.save()
    response = client.post(PROMPT, {"password": factories.PASSWORD, "code": fresh_totp_code(reader), "next": "/"})
    assert response.status_code == 403
    assert not access_levels_state(tenant=contoso).respond
