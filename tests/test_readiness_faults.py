"""Readiness under faults: runs that could not record their end are closed by the next sweep,
and a crash while enqueueing strands a tenant for about a minute, not a whole lease."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.db import DatabaseError, OperationalError
from django.utils import timezone

from readiness import services
from readiness.models import ReadinessState, RefreshRun, RunOutcome, Snapshot
from readiness.services import (
    readiness_claim_due,
    readiness_reconcile_runs,
    readiness_refresh,
    readiness_state_for,
    readiness_sweep,
)
from readiness.tasks import refresh_tenant
from tenancy.models import Tenant
from tests import factories

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def _database_restart_during_the_first_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first attempt's refresh fails with the database gone, and so does recording that failure."""
    real_facts = services.environment_facts
    calls = {"n": 0}

    def facts(*, tenant: Tenant) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("terminating connection due to administrator command")
        return real_facts(tenant=tenant)

    real_record = services._record_run_failure

    def record(**kwargs: Any) -> None:
        with mock.patch.object(RefreshRun.objects, "filter", side_effect=DatabaseError("the database is restarting")):
            real_record(**kwargs)

    monkeypatch.setattr(services, "environment_facts", facts)
    monkeypatch.setattr(services, "_record_run_failure", record)


def test_a_run_whose_failure_could_not_be_recorded_is_closed_when_the_retry_completes(contoso, monkeypatch, caplog):
    """The stuck run of a PostgreSQL restart: before, it stayed "running" until the next claim, up to a day."""
    readiness_state_for(tenant=contoso)
    (claim,) = readiness_claim_due(now=timezone.now() + timedelta(seconds=1))
    _database_restart_during_the_first_attempt(monkeypatch)
    result = refresh_tenant.apply(args=(contoso.pk, claim.generation), throw=False)
    assert result.get() == "succeeded"  # the task's autoretry completed the same generation
    assert "could not record the failed readiness run" in caplog.text
    runs = list(RefreshRun.objects.filter(tenant=contoso).order_by("id").values_list("generation", "outcome"))
    assert runs == [(claim.generation, RunOutcome.SUPERSEDED), (claim.generation, RunOutcome.SUCCEEDED)]
    stuck = RefreshRun.objects.filter(tenant=contoso).order_by("id").first()
    assert stuck.finished_at is not None and "a retry finished" in stuck.error
    assert Snapshot.objects.filter(tenant=contoso).count() == 1


def test_the_next_sweep_closes_a_run_whose_generation_completed(contoso):
    """However the run was left (a retry ran on a worker that then died before closing it), the sweep closes it."""
    readiness_state_for(tenant=contoso)
    (claim,) = readiness_claim_due(now=timezone.now() + timedelta(seconds=1))
    assert readiness_refresh(tenant_id=contoso.pk, generation=claim.generation) == "succeeded"
    stuck = RefreshRun.objects.create(tenant=contoso, generation=claim.generation, started_at=timezone.now())
    result = readiness_sweep()
    assert result.reconciled == 1 and result.claimed_count == 0  # the tenant itself isn't due for a day
    stuck.refresh_from_db()
    assert stuck.outcome == RunOutcome.SUPERSEDED and stuck.finished_at is not None


def test_the_next_sweep_closes_a_run_whose_lease_lapsed_even_if_the_tenant_is_not_claimed(contoso, settings):
    readiness_state_for(tenant=contoso)
    t0 = timezone.now() + timedelta(seconds=1)
    (claim,) = readiness_claim_due(now=t0)
    running = RefreshRun.objects.create(tenant=contoso, generation=claim.generation, started_at=t0)
    # While the lease holds the run may really be running: left alone.
    assert readiness_reconcile_runs(now=t0 + timedelta(seconds=settings.READINESS_LEASE - 1)) == 0
    # Say the tenant was moved out of the due set meanwhile (not due for a day): the run is still closed.
    ReadinessState.objects.filter(tenant=contoso).update(next_refresh_at=t0 + timedelta(days=1))
    with time_machine.travel(t0 + timedelta(seconds=settings.READINESS_LEASE + 1), tick=False):
        result = readiness_sweep()
    assert result.reconciled == 1 and result.claimed_count == 0
    running.refresh_from_db()
    assert running.outcome == RunOutcome.LOST and "lease lapsed" in running.error


def test_a_running_run_with_a_live_lease_is_left_alone(contoso):
    readiness_state_for(tenant=contoso)
    (claim,) = readiness_claim_due(now=timezone.now() + timedelta(seconds=1))
    run = RefreshRun.objects.create(tenant=contoso, generation=claim.generation, started_at=timezone.now())
    assert readiness_reconcile_runs() == 0
    run.refresh_from_db()
    assert run.outcome == RunOutcome.RUNNING


def test_no_run_is_left_running_after_a_sweep_past_every_lease(settings):
    """The invariant the chaos suite checks, at the service level."""
    tenants = [factories.tenant(f"Reconcile {i}") for i in range(4)]
    t0 = timezone.now() + timedelta(seconds=1)
    for tenant in tenants:
        readiness_state_for(tenant=tenant)
    claims = readiness_claim_due(now=t0)
    # 0: finished by a retry (which closes it at once); 1: worker died; 2: reclaimed already; 3: still running.
    for claim in claims:
        RefreshRun.objects.create(tenant_id=claim.tenant_id, generation=claim.generation, started_at=t0)
    readiness_refresh(tenant_id=claims[0].tenant_id, generation=claims[0].generation)
    ReadinessState.objects.filter(tenant_id=claims[2].tenant_id).update(generation=claims[2].generation + 1)
    later = t0 + timedelta(seconds=settings.READINESS_LEASE + 1)
    ReadinessState.objects.filter(tenant_id=claims[3].tenant_id).update(lease_expires_at=later + timedelta(minutes=5))
    assert readiness_reconcile_runs(now=later) == 2
    outcomes = dict(RefreshRun.objects.exclude(outcome=RunOutcome.SUCCEEDED).values_list("tenant_id", "outcome"))
    assert outcomes == {
        claims[0].tenant_id: RunOutcome.SUPERSEDED,
        claims[1].tenant_id: RunOutcome.LOST,
        claims[2].tenant_id: RunOutcome.LOST,
        claims[3].tenant_id: RunOutcome.RUNNING,
    }


# --- Claims no larger than what can be enqueued at once ----------------------------------


@pytest.fixture
def due_tenants(settings: Any) -> list[Tenant]:
    settings.READINESS_CLAIM_CHUNK = 2
    tenants = [factories.tenant(f"Chunk {i}") for i in range(5)]
    for tenant in tenants:
        readiness_state_for(tenant=tenant)
    return tenants


def _leases() -> list[Any]:
    return list(ReadinessState.objects.order_by("next_refresh_at", "id").values_list("lease_expires_at", flat=True))


def test_the_sweep_claims_and_enqueues_in_chunks(due_tenants, monkeypatch):
    sent: list[list[int]] = []
    monkeypatch.setattr(
        services, "readiness_enqueue", lambda chunk: sent.append([c.tenant_id for c in chunk]) or len(chunk)
    )
    now = timezone.now() + timedelta(seconds=1)
    result = readiness_sweep(now=now)
    assert [len(c) for c in sent] == [2, 2, 1]
    assert result.claimed_count == result.enqueued == 5
    # Handed to the broker: each has the full lease.
    assert all(lease is not None and lease > now + timedelta(seconds=60) for lease in _leases())


def test_a_crash_during_the_enqueue_strands_one_chunk_for_a_minute_not_a_lease(due_tenants, monkeypatch, settings):
    """Before: the sweep committed its whole claim first; a worker or Redis failure during the
    enqueue left every unsent tenant waiting the full READINESS_LEASE (10 minutes)."""
    calls = {"n": 0}

    def enqueue(chunk: list[Any]) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise WorkerKilled  # SIGKILL while publishing the second chunk
        return len(chunk)

    monkeypatch.setattr(services, "readiness_enqueue", enqueue)
    now = timezone.now() + timedelta(seconds=1)
    with pytest.raises(WorkerKilled):
        readiness_sweep(now=now)
    states = list(ReadinessState.objects.order_by("next_refresh_at", "id"))
    leased = [s.lease_expires_at for s in states]
    # First chunk: sent, full lease. Second: claimed, never sent, short lease. Fifth: never claimed.
    assert leased[0] == leased[1] and leased[0] > now + timedelta(seconds=settings.READINESS_LEASE - 5)
    assert leased[2] == leased[3] == now + timedelta(seconds=settings.READINESS_ENQUEUE_LEASE)
    assert leased[4] is None

    monkeypatch.setattr(services, "readiness_enqueue", lambda chunk: len(chunk))
    # The stranded tenants come back with the first sweep one interval plus a minute later.
    back_by = now + timedelta(seconds=settings.CELERY_BEAT_SCHEDULE["readiness-sweep"]["schedule"] + 60)
    result = readiness_sweep(now=back_by)
    assert sorted(c.tenant_id for c in result.claimed) == sorted(s.tenant_id for s in states[2:])


def test_a_broker_failure_mid_chunk_stops_claiming(due_tenants, monkeypatch, settings):
    def enqueue(chunk: list[Any]) -> int:
        return 1  # the broker went away after one message

    monkeypatch.setattr(services, "readiness_enqueue", enqueue)
    now = timezone.now() + timedelta(seconds=1)
    result = readiness_sweep(now=now)
    assert result.claimed_count == 2 and result.enqueued == 1
    leased = _leases()
    assert leased[0] > now + timedelta(seconds=settings.READINESS_ENQUEUE_LEASE)
    assert leased[1] == now + timedelta(seconds=settings.READINESS_ENQUEUE_LEASE)
    assert leased[2:] == [None, None, None]  # not claimed: nothing that can't be sent now


def test_eager_refreshes_are_not_given_a_lease_after_they_finish(due_tenants):
    result = readiness_sweep(now=timezone.now() + timedelta(seconds=1))
    assert result.claimed_count == 5
    assert set(ReadinessState.objects.values_list("lease_expires_at", flat=True)) == {None}
    assert RefreshRun.objects.filter(outcome=RunOutcome.SUCCEEDED).count() == 5


def test_a_message_that_waited_past_its_lease_still_refreshes_and_the_newer_one_is_a_no_op(contoso, settings):
    """A queue longer than the lease: before, every message found its tenant claimed again and was
    skipped, and the sweeps re-enqueued the same tenants forever (the chaos suite's crowd phase)."""
    readiness_state_for(tenant=contoso)
    t0 = timezone.now() + timedelta(seconds=1)
    (first,) = readiness_claim_due(now=t0)
    (second,) = readiness_claim_due(now=t0 + timedelta(seconds=settings.READINESS_LEASE + 1))
    assert second.generation == first.generation + 1
    assert readiness_refresh(tenant_id=contoso.pk, generation=first.generation) == "succeeded"
    assert readiness_refresh(tenant_id=contoso.pk, generation=second.generation) == "skipped"
    assert readiness_refresh(tenant_id=contoso.pk, generation=first.generation) == "skipped"
    runs = list(RefreshRun.objects.filter(tenant=contoso).values_list("generation", "outcome"))
    assert runs == [(second.generation, RunOutcome.SUCCEEDED)]
    state = ReadinessState.objects.get(tenant=contoso)
    assert state.completed_generation == state.generation == second.generation
    assert Snapshot.objects.filter(tenant=contoso).count() == 1
