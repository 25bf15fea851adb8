"""The service delivery manager's phase moves (Start the monitoring phase, Confirm the service Active) carry the
phase they were read at: a move made meanwhile by someone else is a 409 with the reason typed kept; the same form
sent twice changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from tenancy.models import ServicePhase, Tenant

pytestmark = pytest.mark.django_db


def _phase(tenant: Tenant, phase: str, *, days_ago: int = 0) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(
        service_phase=phase, service_phase_changed_at=timezone.now() - timedelta(days=days_ago)
    )


def _fields(html: str, action: str) -> dict[str, str]:
    form = html[html.index(f'action="{action}"') :]
    form = form[: form.index("</form>")].replace('name="csrfmiddlewaretoken"', "")
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_start_monitoring_sent_twice_starts_once(login: Any, sdm: Any, contoso: Tenant) -> None:
    _phase(contoso, ServicePhase.PREPARING)
    client = login(sdm)
    url = reverse("readiness_provider:start_monitoring", args=[contoso.pk])
    shown = _fields(client.get(url).content.decode(), url)
    assert shown == {"phase": "preparing"}
    form = {**shown, "reason": "Pilot agreed with the CISO"}
    assert client.post(url, form).status_code == 302
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.MONITORING
    started = contoso.service_phase_changed_at
    events = AuditEvent.objects.count()
    again = client.post(url, form, follow=True)
    assert "Nothing changed: the monitoring phase of Contoso had already started." in again.content.decode()
    contoso.refresh_from_db()
    assert contoso.service_phase_changed_at == started
    assert AuditEvent.objects.count() == events


def test_start_monitoring_read_before_the_phase_moved_elsewhere_is_a_409_keeping_the_reason(
    login: Any, sdm: Any, contoso: Tenant
) -> None:
    _phase(contoso, ServicePhase.PREPARING)
    client = login(sdm)
    url = reverse("readiness_provider:start_monitoring", args=[contoso.pk])
    shown = _fields(client.get(url).content.decode(), url)
    _phase(contoso, ServicePhase.ACTIVE)  # moved on meanwhile (by an operator)
    events = AuditEvent.objects.count()
    response = client.post(url, {**shown, "reason": "Pilot agreed with the CISO"})
    assert response.status_code == 409
    html = response.content.decode()
    assert "Contoso moved to the Active phase since you opened this page, so nothing was changed." in html
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.ACTIVE
    assert AuditEvent.objects.count() == events


def test_a_stale_start_keeps_the_reason_when_the_form_is_offered_again(login: Any, sdm: Any, contoso: Tenant) -> None:
    _phase(contoso, ServicePhase.PREPARING)
    client = login(sdm)
    url = reverse("readiness_provider:start_monitoring", args=[contoso.pk])
    # A form read while the tenant was (say) Invited, posted once it is Preparing again.
    response = client.post(url, {"phase": "invited", "reason": "Pilot agreed with the CISO"})
    assert response.status_code == 409
    html = response.content.decode()
    assert ">Pilot agreed with the CISO</textarea>" in html
    assert _fields(html, url) == {"phase": "preparing"}  # starting again now knowingly applies to what is shown
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.PREPARING


def test_confirm_active_sent_twice_confirms_once(login: Any, sdm: Any, contoso: Tenant) -> None:
    _phase(contoso, ServicePhase.MONITORING, days_ago=settings.READINESS_MONITORING_DAYS + 1)
    client = login(sdm)
    page = reverse("readiness_provider:tenant", args=[contoso.pk])
    url = reverse("readiness_provider:confirm_active", args=[contoso.pk])
    shown = _fields(client.get(page).content.decode(), url)
    assert shown == {"phase": "monitoring"}
    assert client.post(url, shown).status_code == 302
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.ACTIVE
    events = AuditEvent.objects.count()
    again = client.post(url, shown, follow=True)
    assert "Nothing changed" in again.content.decode()
    assert AuditEvent.objects.count() == events


def test_confirm_active_read_at_another_phase_is_a_409(login: Any, sdm: Any, contoso: Tenant) -> None:
    _phase(contoso, ServicePhase.MONITORING, days_ago=settings.READINESS_MONITORING_DAYS + 1)
    client = login(sdm)
    response = client.post(reverse("readiness_provider:confirm_active", args=[contoso.pk]), {"phase": "preparing"})
    assert response.status_code == 409
    assert "since you opened this page" in response.content.decode()
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.MONITORING
