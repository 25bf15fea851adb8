"""Service status renders the parts that only change with a refresh once per snapshot generation.

The history and the action rows are cached (Django's cache) under keys that name what they show:
a refresh, a change seen in the environment or other filters must show at once, never a stale part.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from demo.environments import seed_environment
from environment import services as environment_services
from environment.models import AntivirusMode, Device
from readiness.models import ReadinessState, Snapshot
from readiness.services import readiness_state_for, readiness_sweep
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

URL = "/settings/defender-experts/service-status/"


def refresh(tenant: Tenant) -> ReadinessState:
    readiness_state_for(tenant=tenant)
    ReadinessState.objects.filter(tenant=tenant).update(next_refresh_at=timezone.now())
    readiness_sweep()
    return ReadinessState.objects.get(tenant=tenant)


@pytest.fixture
def assessed(contoso: Tenant) -> ReadinessState:
    seed_environment(contoso, devices=300)
    return refresh(contoso)


def _history_rows(html: str) -> int:
    return html.split('data-testid="history"')[1].count("<tr><td>")


def test_a_refresh_shows_its_snapshot_at_once(login: Any, admin: Any, contoso: Tenant, assessed: Any) -> None:
    client = login(admin)
    assert _history_rows(client.get(URL).content.decode()) == 1
    assert _history_rows(client.get(URL).content.decode()) == 1  # from the cache
    refresh(contoso)
    assert Snapshot.objects.filter(tenant=contoso).count() == 2
    assert _history_rows(client.get(URL).content.decode()) == 2


def test_the_history_is_read_once_per_generation(
    login: Any, admin: Any, contoso: Tenant, assessed: Any, django_assert_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(admin)
    with CaptureQueriesContext(connection) as first:
        client.get(URL)
    with CaptureQueriesContext(connection) as second:
        client.get(URL)
    history = [q["sql"] for q in first.captured_queries if '"readiness_snapshot"' in q["sql"]]
    assert len(history) == 1
    assert not [q["sql"] for q in second.captured_queries if '"readiness_snapshot"' in q["sql"]]


def test_a_change_seen_in_the_environment_shows_in_the_cached_rows(
    login: Any, admin: Any, contoso: Tenant, assessed: Any
) -> None:
    client = login(admin)
    before = client.get(URL).content.decode()
    assert "A change was seen on" not in before
    passive = list(Device.objects.filter(tenant=contoso, av_mode=AntivirusMode.PASSIVE).values_list("pk", flat=True))
    environment_services.devices_set_antivirus_mode(
        tenant=contoso, acting_user=admin, mode=AntivirusMode.ACTIVE, device_ids=passive[:5]
    )
    after = client.get(URL).content.decode()
    assert 'data-testid="pending-change"' in after
    assert "A change was seen on" in after


def test_each_filter_has_its_own_rows(login: Any, admin: Any, assessed: Any) -> None:
    client = login(admin)
    everything = client.get(URL).content.decode()
    completed = client.get(URL, {"status": "completed"}).content.decode()
    assert everything.count("<tr id=") > completed.count("<tr id=")
    assert all('data-status="completed"' in row for row in completed.split("<tr id=")[1:])
    assert client.get(URL).content.decode().count("<tr id=") == everything.count("<tr id=")


def test_fragments_of_one_tenant_never_show_for_another(
    login: Any, admin: Any, outsider: Any, contoso: Tenant, fabrikam: Tenant, assessed: Any
) -> None:
    seed_environment(fabrikam, devices=40)
    refresh(fabrikam)
    refresh(contoso)
    refresh(contoso)  # Contoso's history is now longer than Fabrikam's
    assert Snapshot.objects.filter(tenant=contoso).count() > Snapshot.objects.filter(tenant=fabrikam).count()
    login(admin).get(URL)
    html = login(outsider).get(URL).content.decode()
    fabrikam_state = ReadinessState.objects.get(tenant=fabrikam)
    assert f'data-testid="devices-protected">{fabrikam_state.devices_protected:,}<' in html
    assert _history_rows(html) == Snapshot.objects.filter(tenant=fabrikam).count()
