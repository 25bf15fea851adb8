"""Environment settings and licences: a stale edit that would change something is a 409 with the
admin's value kept in its row; a stale edit asking for what is already in place is a double submit."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from environment.models import Licence, SecuritySetting
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("htmx", [False, True])
def test_a_stale_seat_count_is_a_409_with_the_typed_count_kept(login, admin, contoso, htmx):
    factories.licence(contoso, "mde_p2", 20)  # another admin set 20 after this page showed 25
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = login(admin).post(
        reverse("environment:licences"), {"product": "mde_p2", "seats": "30", "expected": "25"}, **headers
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert 'value="30"' in html  # the admin's own count
    assert 'name="expected" value="20"' in html  # saving again applies it knowingly
    assert Licence.objects.get(tenant=contoso, product="mde_p2").seats == 20


def test_a_stale_seat_count_equal_to_the_current_one_is_a_double_submit(login, admin, contoso):
    factories.licence(contoso, "mde_p2", 30)
    client = login(admin)
    events = AuditEvent.objects.count()
    response = client.post(reverse("environment:licences"), {"product": "mde_p2", "seats": "30", "expected": "25"})
    assert response.status_code == 302
    assert AuditEvent.objects.count() == events


def test_a_stale_setting_is_a_409_and_the_same_value_again_is_a_double_submit(login, admin, contoso):
    factories.setting(contoso, "mde.edr_block_mode", "on")
    client = login(admin)
    url = reverse("environment:settings")
    conflict = client.post(url, {"key": "mde.edr_block_mode", "value": "off", "expected": "off"})
    assert conflict.status_code == 409
    assert SecuritySetting.objects.get(tenant=contoso, key="mde.edr_block_mode").value == "on"
    events = AuditEvent.objects.count()
    same = client.post(url, {"key": "mde.edr_block_mode", "value": "on", "expected": "off"})
    assert same.status_code == 302
    assert AuditEvent.objects.count() == events
