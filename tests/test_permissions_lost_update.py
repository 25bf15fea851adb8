"""No Permissions edit is lost silently: a stale save that would change anything, an end date
included, is a 409 with the admin's own values kept; only a resubmit that changes nothing is a
double submit."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from permissions.selectors import access_levels_state
from tenancy.reauth import SESSION_AUTH_TIME

pytestmark = pytest.mark.django_db

INDEX = reverse("permissions:index")
LEVELS = reverse("permissions:levels")


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_AUTH_TIME] = int(time.time())  # Respond directly needs a recent password
    session.save()
    return client


def _form_as_shown(client: Client) -> dict[str, str]:
    """The hidden fields of the levels form, as the page rendered them."""
    html = client.get(INDEX).content.decode()
    form = html[html.index('id="levels-title"') :]
    fields = {}
    for name in ("version", "investigate_was", "respond_was"):
        found = re.search(rf'name="{name}"(?: value="([^"]*)")?', form)
        assert found, name
        fields[name] = found.group(1) or ""
    return fields


def _save(client: Client, shown: dict[str, str], duration: str, **levels: str):
    return client.post(LEVELS, {**shown, "investigate": "on", "respond": "on", "duration": duration, **levels})


def _days(tenant) -> dict[str, int]:
    return {level: g.days_left for level, g in access_levels_state(tenant=tenant).grants.items()}


def test_a_stale_save_with_another_duration_is_a_409_not_a_silent_success(contoso, admin, secadmin):
    """The lost update: A saves both levels for 30 days, then B saves both for 365 days from the
    form read at the same version. Before: B was told "Access levels saved.", the grant ended in
    30 days and the audit log had nothing from B."""
    a, b = _signed_in(admin), _signed_in(secadmin)
    shown_to_a, shown_to_b = _form_as_shown(a), _form_as_shown(b)
    assert shown_to_a == shown_to_b

    assert _save(a, shown_to_a, "30").status_code == 302
    assert _days(contoso) == {"investigate": 30, "respond": 30}
    events = AuditEvent.objects.count()

    response = _save(b, shown_to_b, "365")
    assert response.status_code == 409
    html = response.content.decode()
    assert "Access levels saved." not in html
    assert "changed these permissions while you were editing" in html
    # B's own choices stay on the page, against the current version and the levels it now shows.
    assert re.search(r'name="investigate"[^>]*checked', html) and re.search(r'name="respond"[^>]*checked', html)
    current = access_levels_state(tenant=contoso)
    assert f'name="version" value="{current.version}"' in html
    assert 'name="investigate_was" value="True"' in html and 'name="respond_was" value="True"' in html
    assert _days(contoso) == {"investigate": 30, "respond": 30}
    assert AuditEvent.objects.count() == events

    # Both levels are on now, so the page offers what B can still do: renew them for longer.
    assert "Renew" in html


def test_a_double_submit_that_changes_nothing_is_not_a_conflict(contoso, admin):
    a = _signed_in(admin)
    shown = _form_as_shown(a)
    assert _save(a, shown, "30").status_code == 302
    events = AuditEvent.objects.count()
    second = _save(a, shown, "30")  # the same form, sent twice
    assert second.status_code == 302
    assert AuditEvent.objects.count() == events
    follow = a.get(second["Location"]).content.decode()
    assert "Nothing changed" in follow


def test_a_stale_save_of_other_levels_is_a_409(contoso, admin, secadmin):
    a, b = _signed_in(admin), _signed_in(secadmin)
    shown = _form_as_shown(a)
    _form_as_shown(b)
    assert _save(a, shown, "90").status_code == 302
    response = b.post(LEVELS, {**shown, "investigate": "on", "duration": "90"})  # B wanted Investigate only
    assert response.status_code == 409
    assert access_levels_state(tenant=contoso).respond


def test_a_stale_save_turning_on_a_level_the_other_admin_granted_with_the_same_end_is_a_double_submit(
    contoso, admin, secadmin
):
    a, b = _signed_in(admin), _signed_in(secadmin)
    shown = _form_as_shown(a)
    assert _save(a, shown, "180").status_code == 302
    events = AuditEvent.objects.count()
    assert _save(b, shown, "180").status_code == 302  # two admins making the same change
    assert AuditEvent.objects.count() == events


# --- Renewing a grant ------------------------------------------------------------------------------


def _renew_form_as_shown(client: Client, grant_pk: int) -> dict[str, str]:
    """The hidden fields of one grant's renew form, as the page rendered them."""
    html = client.get(INDEX).content.decode()
    form = html[html.index(f'action="{reverse("permissions:renew", args=[grant_pk])}"') :]
    form = form[: form.index("</form>")]
    fields = {}
    for name in ("version", "ends_was"):
        found = re.search(rf'name="{name}" value="([^"]*)"', form)
        assert found, name
        fields[name] = found.group(1)
    return fields


@pytest.fixture
def granted(contoso, admin, secadmin):
    """Investigate on for 30 days, and the renew form as two admins read it."""
    a, b = _signed_in(admin), _signed_in(secadmin)
    a.post(LEVELS, {**_form_as_shown(a), "investigate": "on", "duration": "30"})
    grant = access_levels_state(tenant=contoso).grants["investigate"]
    return a, b, grant, _renew_form_as_shown(a, grant.pk)


def test_a_stale_renewal_to_another_end_is_a_409_with_the_admins_choice_kept(contoso, granted):
    a, b, grant, shown = granted
    url = reverse("permissions:renew", args=[grant.pk])
    assert a.post(url, {**shown, "duration": "90"}).status_code == 302
    renewed = access_levels_state(tenant=contoso).grants["investigate"].ends_at
    events = AuditEvent.objects.count()

    response = b.post(url, {**shown, "duration": "365"})  # B's form was read before A renewed
    assert response.status_code == 409
    html = response.content.decode()
    assert "changed these permissions while you were editing" in html
    form = html[html.index(f'action="{url}"') :]
    form = form[: form.index("</form>")]
    assert re.search(r'<option value="365" selected', form)  # B's own choice
    current = access_levels_state(tenant=contoso)
    assert f'name="version" value="{current.version}"' in form
    assert f'name="ends_was" value="{renewed.isoformat()}"' in form  # renewing again extends what is shown
    assert current.grants["investigate"].ends_at == renewed
    assert AuditEvent.objects.count() == events


def test_a_renewal_sent_twice_extends_once(contoso, granted):
    a, _, grant, shown = granted
    url = reverse("permissions:renew", args=[grant.pk])
    assert a.post(url, {**shown, "duration": "90"}).status_code == 302
    once = access_levels_state(tenant=contoso).grants["investigate"].ends_at
    assert once == grant.ends_at + timedelta(days=90)
    events = AuditEvent.objects.count()
    second = a.post(url, {**shown, "duration": "90"})  # the same form again
    assert second.status_code == 302
    assert "Nothing changed" in a.get(second["Location"]).content.decode()
    assert access_levels_state(tenant=contoso).grants["investigate"].ends_at == once
    assert AuditEvent.objects.count() == events


def test_a_renew_form_carrying_an_end_date_no_page_showed_is_refused(contoso, granted):
    a, _, grant, shown = granted
    url = reverse("permissions:renew", args=[grant.pk])
    response = a.post(url, {**shown, "ends_was": "9999-12-31T00:00:00+00:00", "duration": "365"})
    assert response.status_code == 400
    assert "This form is out of date" in response.content.decode()
    assert access_levels_state(tenant=contoso).grants["investigate"].ends_at == grant.ends_at


# --- Restoring access ------------------------------------------------------------------------------


@pytest.fixture
def removed(contoso, admin, secadmin):
    """Access removed, and the restore form as two admins read it."""
    a, b = _signed_in(admin), _signed_in(secadmin)
    a.post(LEVELS, {**_form_as_shown(a), "investigate": "on", "duration": "30"})
    v = access_levels_state(tenant=contoso).version
    assert a.post(reverse("permissions:remove"), {"version": v, "confirm": "True"}).status_code == 302
    assert access_levels_state(tenant=contoso).removed
    return a, b, _form_as_shown(a)


def test_a_stale_restore_with_other_levels_is_a_409_with_the_admins_choice_kept(contoso, removed):
    a, b, shown = removed
    restore = reverse("permissions:restore")
    assert a.post(restore, {**shown, "investigate": "on", "duration": "30"}).status_code == 302
    events = AuditEvent.objects.count()
    response = b.post(restore, {**shown, "investigate": "on", "respond": "on", "duration": "90"})
    assert response.status_code == 409
    html = response.content.decode()
    assert re.search(r'name="respond"[^>]*checked', html)  # B's own choice
    assert re.search(r'<option value="90" selected', html)
    state = access_levels_state(tenant=contoso)
    assert (state.investigate, state.respond) == (True, False)
    assert AuditEvent.objects.count() == events


def test_a_restore_sent_twice_is_harmless(contoso, removed):
    a, _, shown = removed
    restore = reverse("permissions:restore")
    assert a.post(restore, {**shown, "investigate": "on", "duration": "30"}).status_code == 302
    events = AuditEvent.objects.count()
    second = a.post(restore, {**shown, "investigate": "on", "duration": "30"})
    assert second.status_code == 302
    assert "Nothing changed" in a.get(second["Location"]).content.decode()
    assert AuditEvent.objects.count() == events


def test_a_stale_restore_with_a_longer_duration_is_a_409(contoso, removed):
    a, b, shown = removed
    restore = reverse("permissions:restore")
    assert a.post(restore, {**shown, "investigate": "on", "duration": "30"}).status_code == 302
    response = b.post(restore, {**shown, "investigate": "on", "duration": "365"})
    assert response.status_code == 409
    assert access_levels_state(tenant=contoso).grants["investigate"].days_left == 30
