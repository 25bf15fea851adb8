"""Confirmations and small edits: each has a page of its own (the deep link, a new tab, the no-script path) whose
``data-flyout-content`` region the flyout script shows in a dialog or drawer."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from demo.environments import seed_environment
from readiness.models import ReadinessState
from readiness.services import readiness_state_for, readiness_sweep
from tenancy.models import ProviderRole, ServicePhase, Tenant
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def preparing(contoso: Tenant) -> Tenant:
    seed_environment(contoso, devices=200)
    readiness_state_for(tenant=contoso)
    ReadinessState.objects.filter(tenant=contoso).update(next_refresh_at=timezone.now())
    readiness_sweep()
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.PREPARING)
    contoso.refresh_from_db()
    return contoso


def test_start_monitoring_has_a_page_stating_the_consequence(login: Any, sdm: Any, preparing: Tenant) -> None:
    url = reverse("readiness_provider:start_monitoring", args=[preparing.pk])
    tenant_page = login(sdm).get(reverse("readiness_provider:tenant", args=[preparing.pk])).content.decode()
    assert f'href="{url}" data-flyout="drawer"' in tenant_page
    html = login(sdm).get(url).content.decode()
    assert "data-flyout-content" in html
    assert "Start the monitoring phase for Contoso?" in html
    assert "our experts monitor Contoso's environment closely" in html
    assert 'name="reason"' in html  # the demo isn't ready: a reason is needed
    preparing.refresh_from_db()
    assert preparing.service_phase == ServicePhase.PREPARING  # a GET changes nothing


def test_start_monitoring_page_outside_the_preparing_phase_goes_back(login: Any, sdm: Any, preparing: Tenant) -> None:
    Tenant.objects.filter(pk=preparing.pk).update(service_phase=ServicePhase.MONITORING)
    response = login(sdm).get(reverse("readiness_provider:start_monitoring", args=[preparing.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("readiness_provider:tenant", args=[preparing.pk])


def test_start_monitoring_page_is_for_the_sdm_of_the_tenant_only(
    login: Any, preparing: Tenant, admin: Any, fabrikam: Tenant
) -> None:
    analyst = factories.staff(ProviderRole.ANALYST, "analyst@experts.example")
    url = reverse("readiness_provider:start_monitoring", args=[preparing.pk])
    assert login(analyst).get(url).status_code == 403
    assert login(admin).get(url).status_code in {302, 403, 404}
    assert login(analyst).get(reverse("readiness_provider:start_monitoring", args=[99999])).status_code in {403, 404}
