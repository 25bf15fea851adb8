"""Readiness services: the catalogue, the rules, the sweep, the refresh and its delay,
Request refresh, the monitoring phase and regressions."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.db import OperationalError, connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from audit.models import AuditEvent
from core.errors import Invalid
from demo.environments import GOOD_SETTINGS, seed_environment
from environment import services as env
from environment.models import AntivirusMode, Device, DomainController
from environment.security_settings import SETTINGS_BY_KEY
from outbox.models import OutboxMessage
from readiness import catalogue
from readiness.exceptions import ReadinessNotMet, RefreshRateLimited
from readiness.models import ActionState, ActionStatus, ReadinessState, RefreshRun, Regression, RunOutcome, Snapshot
from readiness.rules import RULES
from readiness.selectors import readiness_summaries
from readiness.services import (
    readiness_claim_due,
    readiness_confirm_active,
    readiness_refresh,
    readiness_request_refresh,
    readiness_start_monitoring,
    readiness_state_for,
    readiness_sweep,
)
from readiness.tasks import refresh_tenant
from tenancy.models import ServicePhase, Tenant
from tests import factories


def grant_provider_access(tenant: Tenant, user: Any) -> None:
    from permissions.selectors import access_levels_state
    from permissions.services import access_levels_set

    state = access_levels_state(tenant=tenant)
    access_levels_set(tenant=tenant, acting_user=user, investigate=True, respond=False, expected_version=state.version)


def refresh(tenant: Tenant) -> ReadinessState:
    """Make the tenant due now and run one sweep (tasks run inline in the test settings)."""
    readiness_state_for(tenant=tenant)
    ReadinessState.objects.filter(tenant=tenant).update(next_refresh_at=timezone.now())
    readiness_sweep()
    return ReadinessState.objects.get(tenant=tenant)


def statuses(tenant: Tenant) -> dict[str, str]:
    return dict(ActionStatus.objects.filter(tenant=tenant).values_list("key", "status"))


def make_ready(tenant: Tenant, user: Any) -> None:
    seed_environment(
        tenant, devices=200, split={"active": 1.0}, domain_controllers=2, sensors=2, settings=GOOD_SETTINGS
    )
    grant_provider_access(tenant, user)


# --- The catalogue ----------------------------------------------------------------------


def test_catalogue_is_data_over_known_settings_and_rules() -> None:
    keys = [e.key for e in catalogue.ENTRIES]
    assert len(keys) == len(set(keys))
    for entry in catalogue.ENTRIES:
        assert entry.rule.type in RULES
        assert entry.product in dict(catalogue.PRODUCTS).values()
        assert entry.title and entry.description and entry.why_it_matters and entry.how_to_fix
        if entry.rule.type == "setting_in":
            spec = SETTINGS_BY_KEY[entry.rule.params["key"]]
            allowed = {v for v, _ in spec.choices}
            assert set(entry.rule.params["values"]) <= allowed
            assert set(entry.rule.params["partial_values"]) <= allowed
    # Every action the issue lists is covered.
    assert {
        "mde.av_active",
        "mde.tamper_protection",
        "mde.cloud_protection",
        "mde.edr_block_mode",
        "mde.network_protection",
        "mde.air_level",
        "mde.asr_rules",
        "mde.pua_protection",
        "mdi.sensors",
        "mdi.audit_policy",
        "entra.licences",
        "entra.provider_access",
        "mdo.safe_links",
        "mdo.safe_attachments",
        "mdo.preset_policies",
        "mdca.m365_connector",
        "purview.unified_audit_log",
    } <= set(keys)


# --- The refresh ---------------------------------------------------------------------------


def test_first_sweep_creates_states_in_bulk_and_assesses(contoso: Tenant, fabrikam: Tenant) -> None:
    counts = seed_environment(contoso, devices=1000)
    result = readiness_sweep()
    assert result.created == 2 and result.claimed_count == 2
    state = ReadinessState.objects.get(tenant=contoso)
    assert state.devices_total == 1000
    assert state.devices_protected == counts.active - 0  # onboarded and active
    assert state.devices_passive == counts.passive
    assert state.devices_disabled == counts.disabled
    assert state.devices_not_onboarded == counts.not_onboarded
    assert state.devices_onboarded == counts.active + counts.passive + counts.disabled
    assert state.identities_total == 100 and state.identities_protected == 75
    assert state.devices_target == 1000 and state.identities_target == 100
    s = statuses(contoso)
    assert s["mde.av_active"] == ActionState.IN_PROGRESS  # partly met
    assert s["mde.tamper_protection"] == ActionState.COMPLETED
    assert s["mde.air_level"] == ActionState.IN_PROGRESS  # semi: partly met
    assert s["purview.unified_audit_log"] == ActionState.NOT_STARTED  # required, off
    assert s["mdo.safe_attachments"] == ActionState.NOT_STARTED  # recommended, off
    assert s["mdi.sensors"] == ActionState.IN_PROGRESS
    assert s["entra.provider_access"] == ActionState.NOT_STARTED
    av = ActionStatus.objects.get(tenant=contoso, key="mde.av_active")
    assert (av.done, av.total) == (counts.active, counts.active + counts.passive + counts.disabled)
    assert not state.is_ready
    run = RefreshRun.objects.get(tenant=contoso)
    assert run.outcome == RunOutcome.SUCCEEDED and run.finished_at and run.duration_ms is not None
    assert run.trigger == "first"
    assert Snapshot.objects.filter(tenant=contoso).count() == 1
    # A tenant with nothing at all is assessed too, without errors.
    assert ReadinessState.objects.get(tenant=fabrikam).actions_not_started > 0


def test_readiness_met_needs_required_actions_and_targets(contoso: Tenant, admin: Any) -> None:
    make_ready(contoso, admin)
    state = refresh(contoso)
    assert state.is_ready, statuses(contoso)
    assert state.ready_since is not None
    # Protected assets below target: no longer ready, though every action is completed.
    factories.licence(contoso, "mde_p2", 500)
    ReadinessState.objects.filter(tenant=contoso).update(next_refresh_at=timezone.now())
    state = refresh(contoso)
    assert not state.is_ready and state.devices_to_protect == 300


def test_provider_access_comes_from_permissions(contoso: Tenant, admin: Any) -> None:
    refresh(contoso)
    assert statuses(contoso)["entra.provider_access"] == ActionState.NOT_STARTED
    grant_provider_access(contoso, admin)
    refresh(contoso)
    assert statuses(contoso)["entra.provider_access"] == ActionState.COMPLETED


def test_refresh_counts_with_aggregate_queries_only(contoso: Tenant) -> None:
    seed_environment(contoso, devices=300)
    readiness_state_for(tenant=contoso)
    claimed = readiness_claim_due(now=timezone.now() + timedelta(seconds=1))
    with CaptureQueriesContext(connection) as small:
        readiness_refresh(tenant_id=contoso.pk, generation=claimed[0].generation)
    factories.devices(contoso, 3000, av_mode=AntivirusMode.PASSIVE)
    ReadinessState.objects.filter(tenant=contoso).update(next_refresh_at=timezone.now())
    claimed = readiness_claim_due(now=timezone.now() + timedelta(seconds=1))
    with CaptureQueriesContext(connection) as large:
        readiness_refresh(tenant_id=contoso.pk, generation=claimed[0].generation)
    # Same statements whatever the number of devices: no per-device work.
    assert len(small) == len(large)
    assert ReadinessState.objects.get(tenant=contoso).devices_passive == 3000 + 30


# --- The delay -------------------------------------------------------------------------------


def test_change_shows_only_after_the_delay(contoso: Tenant, admin: Any, settings: Any) -> None:
    settings.READINESS_MIN_DELAY = 3600
    settings.READINESS_MAX_DELAY = 4 * 3600
    seed_environment(contoso, devices=100, split={"active": 0.5, "passive": 0.5})
    t0 = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    with time_machine.travel(t0, tick=False):
        readiness_sweep()
    ReadinessState.objects.filter(tenant=contoso).update(delay=timedelta(hours=2))  # this tenant's jitter
    before = ReadinessState.objects.get(tenant=contoso)
    assert before.devices_protected == 50
    # The next daily refresh, held to READINESS_MAX_DELAY.
    assert before.next_refresh_at == t0 + timedelta(hours=4)
    with time_machine.travel(t0 + timedelta(hours=1), tick=False):
        env.devices_set_antivirus_mode(tenant=contoso, acting_user=admin, mode="active", all_devices=True)
        result = readiness_sweep()
        assert result.pulled_in == 1 and result.claimed_count == 0
    assert ReadinessState.objects.get(tenant=contoso).next_refresh_at == t0 + timedelta(hours=3)
    # Just before the due time: nothing has changed.
    with time_machine.travel(t0 + timedelta(hours=3) - timedelta(seconds=1), tick=False):
        assert readiness_sweep().claimed_count == 0
    state = ReadinessState.objects.get(tenant=contoso)
    assert state.devices_protected == 50 and state.last_refreshed_at == t0
    assert statuses(contoso)["mde.av_active"] == ActionState.IN_PROGRESS
    # At the due time: everything has.
    with time_machine.travel(t0 + timedelta(hours=3), tick=False):
        assert readiness_sweep().claimed_count == 1
    state = ReadinessState.objects.get(tenant=contoso)
    assert state.devices_protected == 100 and state.last_refreshed_at == t0 + timedelta(hours=3)
    assert statuses(contoso)["mde.av_active"] == ActionState.COMPLETED
    assert RefreshRun.objects.filter(tenant=contoso).first().trigger == "environment"


def test_every_tenant_is_refreshed_daily_without_changes(contoso: Tenant) -> None:
    t0 = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    with time_machine.travel(t0, tick=False):
        readiness_sweep()
    with time_machine.travel(t0 + timedelta(hours=23, minutes=59), tick=False):
        assert readiness_sweep().claimed_count == 0
    with time_machine.travel(t0 + timedelta(hours=24), tick=False):
        assert readiness_sweep().claimed_count == 1
    assert list(RefreshRun.objects.filter(tenant=contoso).values_list("trigger", flat=True)) == ["scheduled", "first"]


def test_per_tenant_delay_is_jittered_within_bounds(settings: Any, db: Any) -> None:
    settings.READINESS_MIN_DELAY = 60
    settings.READINESS_MAX_DELAY = 3600
    for i in range(20):
        factories.tenant(f"T{i}")
    readiness_sweep()
    delays = list(ReadinessState.objects.values_list("delay", flat=True))
    assert all(timedelta(seconds=60) <= d <= timedelta(seconds=3600) for d in delays)
    assert len(set(delays)) > 1


# --- Claims, retries and duplicates -------------------------------------------------------------


def test_same_generation_runs_once(contoso: Tenant) -> None:
    readiness_state_for(tenant=contoso)
    claimed = readiness_claim_due(now=timezone.now() + timedelta(seconds=1))
    gen = claimed[0].generation
    assert readiness_refresh(tenant_id=contoso.pk, generation=gen) == "succeeded"
    assert readiness_refresh(tenant_id=contoso.pk, generation=gen) == "skipped"
    assert readiness_refresh(tenant_id=contoso.pk, generation=gen - 1) == "skipped"
    assert Snapshot.objects.filter(tenant=contoso).count() == 1
    assert RefreshRun.objects.filter(tenant=contoso, outcome=RunOutcome.SUCCEEDED).count() == 1


def test_claimed_tenant_is_not_claimed_again_until_the_lease_lapses(contoso: Tenant, settings: Any) -> None:
    readiness_state_for(tenant=contoso)
    now = timezone.now() + timedelta(seconds=1)
    assert len(readiness_claim_due(now=now)) == 1
    assert readiness_claim_due(now=now + timedelta(seconds=30)) == []
    later = now + timedelta(seconds=settings.READINESS_LEASE + 1)
    assert len(readiness_claim_due(now=later)) == 1


def test_task_retried_after_a_crash(contoso: Tenant) -> None:
    seed_environment(contoso, devices=50)
    readiness_state_for(tenant=contoso)
    claimed = readiness_claim_due(now=timezone.now() + timedelta(seconds=1))
    from readiness import rules

    real = rules.environment_facts
    calls = {"n": 0}

    def flaky(*, tenant: Tenant) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(tenant=tenant)

    with mock.patch("readiness.services.environment_facts", side_effect=flaky):
        result = refresh_tenant.apply(args=(contoso.pk, claimed[0].generation), throw=False)
    assert result.get() == "succeeded"
    outcomes = sorted(RefreshRun.objects.filter(tenant=contoso).values_list("outcome", flat=True))
    assert outcomes == [RunOutcome.FAILED, RunOutcome.SUCCEEDED]
    assert Snapshot.objects.filter(tenant=contoso).count() == 1
    assert ReadinessState.objects.get(tenant=contoso).devices_total == 50


def test_worker_killed_mid_refresh_is_reclaimed_and_old_message_is_a_no_op(contoso: Tenant, settings: Any) -> None:
    readiness_state_for(tenant=contoso)
    t0 = timezone.now() + timedelta(seconds=1)
    first = readiness_claim_due(now=t0)[0]
    # The worker started the refresh and died: a run is left "running", nothing else happened.
    RefreshRun.objects.create(tenant=contoso, generation=first.generation, started_at=t0)
    with time_machine.travel(t0 + timedelta(seconds=settings.READINESS_LEASE + 5), tick=False):
        result = readiness_sweep()
    assert result.claimed_count == 1 and result.claimed[0].generation == first.generation + 1
    runs = list(RefreshRun.objects.filter(tenant=contoso).order_by("id").values_list("outcome", flat=True))
    assert runs == [RunOutcome.LOST, RunOutcome.SUCCEEDED]
    # Redis redelivers the old message later: the generation guard makes it a no-op.
    assert readiness_refresh(tenant_id=contoso.pk, generation=first.generation) == "skipped"
    assert Snapshot.objects.filter(tenant=contoso).count() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_sweeps_claim_disjoint_sets() -> None:
    tenants = [factories.tenant(f"Race {i}") for i in range(120)]
    ReadinessState.objects.bulk_create([ReadinessState(tenant=t, next_refresh_at=timezone.now()) for t in tenants])
    barrier = threading.Barrier(2)
    results: list[list[Any]] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            barrier.wait()
            results.append(readiness_claim_due(now=timezone.now() + timedelta(seconds=1)))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    a, b = ({c.tenant_id for c in r} for r in results)
    assert not (a & b)
    assert len(a | b) == 120
    assert set(ReadinessState.objects.values_list("generation", flat=True)) == {1}


# --- Request refresh -------------------------------------------------------------------------


def test_request_refresh_is_rate_limited_and_still_delayed(contoso: Tenant, admin: Any, settings: Any) -> None:
    settings.READINESS_REQUEST_DELAY = 5 * 60
    settings.READINESS_REQUEST_RATE_LIMIT = 15 * 60
    t0 = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    with time_machine.travel(t0, tick=False):
        readiness_sweep()
        state = readiness_request_refresh(tenant=contoso, acting_user=admin)
    assert t0 < state.next_refresh_at <= t0 + timedelta(seconds=settings.READINESS_REQUEST_DELAY)
    assert AuditEvent.objects.filter(tenant=contoso, action="readiness.refresh_requested").count() == 1
    with time_machine.travel(t0 + timedelta(minutes=14), tick=False):
        with pytest.raises(RefreshRateLimited) as exc:
            readiness_request_refresh(tenant=contoso, acting_user=admin)
    expected = f"{timezone.localtime(state.next_refresh_at):%H:%M} UTC"
    allowed = f"{timezone.localtime(t0 + timedelta(seconds=settings.READINESS_REQUEST_RATE_LIMIT)):%H:%M} UTC"
    assert exc.value.message == (
        f"A refresh was already requested at {timezone.localtime(t0):%H:%M} UTC; expect the latest status by "
        f"{expected}. You can request another after {allowed}."
    )
    assert AuditEvent.objects.filter(tenant=contoso, action="readiness.refresh_requested").count() == 1
    # Not yet due right after the request (the emulated delay), due by the end of it.
    with time_machine.travel(t0, tick=False):
        assert readiness_sweep().claimed_count == 0
    with time_machine.travel(t0 + timedelta(seconds=settings.READINESS_REQUEST_DELAY), tick=False):
        assert readiness_sweep().claimed_count == 1
    assert RefreshRun.objects.filter(tenant=contoso).first().trigger == "requested"
    # Once the requested refresh has run, the refusal says so rather than promise it again.
    ran_at = ReadinessState.objects.get(tenant=contoso).last_refreshed_at
    with time_machine.travel(t0 + timedelta(seconds=settings.READINESS_REQUEST_DELAY + 1), tick=False):
        with pytest.raises(RefreshRateLimited) as exc:
            readiness_request_refresh(tenant=contoso, acting_user=admin)
    assert f"and ran at {timezone.localtime(ran_at):%H:%M} UTC. You can request another after" in exc.value.message
    with time_machine.travel(t0 + timedelta(minutes=16), tick=False):
        readiness_request_refresh(tenant=contoso, acting_user=admin)


# --- Monitoring phase -------------------------------------------------------------------------


def _preparing(tenant: Tenant) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(service_phase=ServicePhase.PREPARING)
    tenant.refresh_from_db()


def test_start_monitoring_refused_before_readiness_is_met(contoso: Tenant, sdm: Any) -> None:
    seed_environment(contoso, devices=100)
    refresh(contoso)
    _preparing(contoso)
    with pytest.raises(ReadinessNotMet) as exc:
        readiness_start_monitoring(tenant=contoso, acting_user=sdm)
    assert "Readiness isn't met" in exc.value.message and "reason" in exc.value.message
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.PREPARING
    assert not AuditEvent.objects.filter(tenant=contoso, action="readiness.monitoring_started").exists()
    # With a reason it starts, and the reason is audited.
    readiness_start_monitoring(tenant=contoso, acting_user=sdm, reason="Customer accepted the risk in writing")
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.MONITORING
    event = AuditEvent.objects.get(tenant=contoso, action="readiness.monitoring_started")
    assert "Customer accepted the risk" in event.summary and event.actor == sdm
    assert AuditEvent.objects.filter(tenant=contoso, action="tenant.phase_changed").exists()


def test_start_monitoring_when_ready_then_confirm_active_after_the_days(
    contoso: Tenant, admin: Any, sdm: Any, settings: Any
) -> None:
    settings.READINESS_MONITORING_DAYS = 7
    make_ready(contoso, admin)
    refresh(contoso)
    _preparing(contoso)
    t0 = timezone.now()
    with time_machine.travel(t0, tick=False):
        readiness_start_monitoring(tenant=contoso, acting_user=sdm)
    contoso.refresh_from_db()
    with time_machine.travel(t0 + timedelta(days=6), tick=False):
        with pytest.raises(Invalid, match="runs until"):
            readiness_confirm_active(tenant=contoso, acting_user=sdm)
    with time_machine.travel(t0 + timedelta(days=7, seconds=1), tick=False):
        readiness_confirm_active(tenant=contoso, acting_user=sdm)
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.ACTIVE


def test_start_monitoring_only_from_preparing(contoso: Tenant, sdm: Any) -> None:
    with pytest.raises(Invalid, match="only start from Preparing"):
        readiness_start_monitoring(tenant=contoso, acting_user=sdm, reason="x")


# --- Regressions -----------------------------------------------------------------------------------


def test_regression_email_sent_once_to_service_review_contacts(contoso: Tenant, admin: Any) -> None:
    from contacts.models import NotificationType
    from contacts.services import contact_add

    make_ready(contoso, admin)
    person = factories.directory_user(contoso, "Sam Review")
    contact_add(
        tenant=contoso,
        acting_user=admin,
        notification_type=NotificationType.SERVICE_REVIEW,
        directory_user_id=person.pk,
    )
    refresh(contoso)
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.ACTIVE)
    env.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="off")
    refresh(contoso)
    mails = OutboxMessage.objects.filter(tenant=contoso, kind="readiness.regression")
    assert mails.count() == 1
    assert mails.get().to == [person.mail.lower()]
    assert "Turn on tamper protection" in mails.get().subject
    assert Regression.objects.filter(tenant=contoso, resolved_at__isnull=True).count() == 1
    # Later refreshes of the same regression send nothing more.
    refresh(contoso)
    refresh(contoso)
    assert mails.count() == 1
    # New unprotected devices are a regression of their own: one more email.
    factories.devices(contoso, 5, onboarded=False)
    refresh(contoso)
    assert mails.count() == 2
    assert Regression.objects.get(key="assets.devices").title == "5 new unprotected devices"
    # Fixed: the regression closes; broken again later: a new regression, a new email.
    env.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="on")
    refresh(contoso)
    assert Regression.objects.get(key="mde.tamper_protection").resolved_at is not None
    env.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="off")
    refresh(contoso)
    assert mails.count() == 3


def test_no_regression_emails_before_the_service_starts(contoso: Tenant, admin: Any) -> None:
    make_ready(contoso, admin)
    refresh(contoso)
    env.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="off")
    refresh(contoso)
    assert not OutboxMessage.objects.filter(kind="readiness.regression").exists()
    assert not Regression.objects.exists()


# --- The cross-app contract --------------------------------------------------------------------


def test_readiness_summaries_fixed_queries(contoso: Tenant, admin: Any, django_assert_num_queries: Any) -> None:
    make_ready(contoso, admin)
    refresh(contoso)
    others = [factories.tenant(f"Other {i}") for i in range(30)]
    with django_assert_num_queries(1):
        one = readiness_summaries(tenant_ids=[contoso.pk])
    with django_assert_num_queries(1):
        many = readiness_summaries(tenant_ids=[contoso.pk, *[t.pk for t in others]])
    assert one[contoso.pk].is_ready and one[contoso.pk].label == "Ready"
    assert one[contoso.pk].completed == one[contoso.pk].total == len(catalogue.ENTRIES)
    assert one[contoso.pk].last_refreshed_at is not None
    assert many[others[0].pk].label == "Not assessed yet" and not many[others[0].pk].is_ready
    assert len(many) == 31


def test_domain_controllers_without_sensor_make_identities_unprotected(contoso: Tenant, admin: Any) -> None:
    seed_environment(contoso, devices=10, domain_controllers=2, sensors=0, identities_per_dc=10)
    state = refresh(contoso)
    assert state.identities_protected == 0 and statuses(contoso)["mdi.sensors"] == ActionState.NOT_STARTED
    dc = DomainController.objects.filter(tenant=contoso).first()
    env.domain_controller_install_sensor(tenant=contoso, acting_user=admin, domain_controller=dc)
    state = refresh(contoso)
    assert state.identities_protected == 10 and statuses(contoso)["mdi.sensors"] == ActionState.IN_PROGRESS
    assert Device.objects.filter(tenant=contoso).count() == 10


def test_change_committed_during_a_refresh_is_not_missed(contoso: Tenant) -> None:
    seed_environment(contoso, devices=20)
    from readiness import rules

    real = rules.environment_facts

    def facts_then_change(*, tenant: Tenant) -> Any:
        facts = real(tenant=tenant)
        # Another transaction changes the environment right after the refresh read it,
        # stamping a time *before* the refresh records its own completion time.
        Tenant.objects.filter(pk=tenant.pk).update(environment_changed_at=timezone.now())
        return facts

    with mock.patch("readiness.services.environment_facts", side_effect=facts_then_change):
        state = refresh(contoso)
    assert state.last_refreshed_at >= Tenant.objects.get(pk=contoso.pk).environment_changed_at
    assert readiness_sweep().pulled_in == 1


def test_entries_dropped_from_the_catalogue_leave_no_rows(contoso: Tenant) -> None:
    now = timezone.now()
    readiness_state_for(tenant=contoso)
    ActionStatus.objects.create(
        tenant=contoso, key="retired.entry", status=ActionState.COMPLETED, last_status_change=now, last_checked_at=now
    )
    refresh(contoso)
    assert not ActionStatus.objects.filter(key="retired.entry").exists()
    assert ActionStatus.objects.filter(tenant=contoso).count() == len(catalogue.ENTRIES)


def test_history_chart_has_one_point_per_refresh(contoso: Tenant) -> None:
    from readiness.selectors import history, history_chart

    assert history_chart([]).series[0]["points"] == []
    seed_environment(contoso, devices=40)
    for _ in range(12):
        refresh(contoso)
    points = history(tenant=contoso)
    chart = history_chart(points)
    assert len(points) == 12
    for series in chart.series:
        assert len(series["points"]) == 12
        assert all(chart.pad_top <= p.y <= chart.height - chart.pad_bottom for p in series["points"])
        assert all(chart.pad_left <= p.x <= chart.width - chart.pad_right for p in series["points"])
    assert chart.xlabels[0]["anchor"] == "start" and chart.xlabels[-1]["anchor"] == "end"
    assert len(chart.rows) == 12


# --- Review round: what the messages say ---------------------------------------------------------------


def test_refusal_names_what_blocks_readiness(contoso: Tenant, admin: Any, sdm: Any) -> None:
    make_ready(contoso, admin)
    # Two required actions undone, one recommended undone (which doesn't block readiness), 10 devices short.
    env.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="off")
    env.security_setting_set(tenant=contoso, acting_user=admin, key="purview.unified_audit_log", value="off")
    env.security_setting_set(tenant=contoso, acting_user=admin, key="mdo.safe_links", value="off")
    factories.devices(contoso, 10, onboarded=False)
    env.licence_set_seats(tenant=contoso, acting_user=admin, product="mde_p2", seats=210)
    refresh(contoso)
    _preparing(contoso)
    required = sum(1 for e in catalogue.ENTRIES if e.required)
    with pytest.raises(ReadinessNotMet) as exc:
        readiness_start_monitoring(tenant=contoso, acting_user=sdm, reason="   ")
    message = exc.value.message
    assert f"2 of {required} actions with the Complete now priority aren't completed" in message
    assert "10 more devices to protect" in message and "identities" not in message
    assert message.endswith("Give a reason to start the monitoring phase anyway.")


def test_refusal_without_licences_says_there_is_no_target(contoso: Tenant, sdm: Any) -> None:
    seed_environment(contoso, devices=20, device_seats=0)
    refresh(contoso)
    _preparing(contoso)
    with pytest.raises(ReadinessNotMet) as exc:
        readiness_start_monitoring(tenant=contoso, acting_user=sdm)
    assert "no Defender for Endpoint licences set a device target" in exc.value.message
    assert "0 more devices" not in exc.value.message


def test_regression_email_says_what_changed_and_how_to_fix_it(contoso: Tenant, admin: Any) -> None:
    make_ready(contoso, admin)
    refresh(contoso)
    Tenant.objects.filter(pk=contoso.pk).update(service_phase=ServicePhase.ACTIVE)
    env.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="off")
    factories.devices(contoso, 3, onboarded=False)
    refresh(contoso)
    mails = {m.subject: m for m in OutboxMessage.objects.filter(tenant=contoso, kind="readiness.regression")}
    assert set(mails) == {
        "Your Defender Experts readiness has changed: “Turn on tamper protection” is no longer completed",
        "Your Defender Experts readiness has changed: 3 new unprotected devices",
    }
    setting = mails["Your Defender Experts readiness has changed: “Turn on tamper protection” is no longer completed"]
    entry = catalogue.ENTRIES_BY_KEY["mde.tamper_protection"]
    text = setting.text_body
    assert (
        "Its status changed from Completed to Not started (priority: Complete now). "
        "Tamper protection is Off; it needs to be On." in text
    )
    assert f"How to fix it: {entry.how_to_fix}" in text
    assert "/settings/defender-experts/service-status/#action-mde-tamper_protection" in text
    assert "is now Complete now" not in text  # the old, confusing wording
    assert escape(entry.how_to_fix) in setting.html_body and "Review it in Service status" in setting.html_body
    devices = mails["Your Defender Experts readiness has changed: 3 new unprotected devices"]
    assert "3 devices are now unprotected, up from 0." in devices.text_body
    assert "/settings/defender-experts/service-status/devices/unprotected/" in devices.text_body
    assert "Onboard the new devices" in devices.text_body


def test_granting_provider_access_is_picked_up_after_the_delay(contoso: Tenant, admin: Any, settings: Any) -> None:
    """Permissions doesn't stamp the environment; granting access is still picked up within the delay,
    not left to the daily refresh, and only ever pulls the due time in."""
    settings.READINESS_MIN_DELAY = 3600
    settings.READINESS_MAX_DELAY = 4 * 3600
    seed_environment(contoso, devices=20)
    t0 = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    with time_machine.travel(t0, tick=False):
        readiness_sweep()
    ReadinessState.objects.filter(tenant=contoso).update(delay=timedelta(hours=2))  # this tenant's jitter
    assert statuses(contoso)["entra.provider_access"] == ActionState.NOT_STARTED
    with time_machine.travel(t0 + timedelta(hours=1), tick=False):
        grant_provider_access(contoso, admin)
        assert readiness_sweep().pulled_in == 1
        assert readiness_sweep().pulled_in == 0  # idempotent: already pulled in
    assert ReadinessState.objects.get(tenant=contoso).next_refresh_at == t0 + timedelta(hours=3)
    with time_machine.travel(t0 + timedelta(hours=3) - timedelta(seconds=1), tick=False):
        assert readiness_sweep().claimed_count == 0
    assert statuses(contoso)["entra.provider_access"] == ActionState.NOT_STARTED
    with time_machine.travel(t0 + timedelta(hours=3), tick=False):
        assert readiness_sweep().claimed_count == 1
    assert statuses(contoso)["entra.provider_access"] == ActionState.COMPLETED
    assert RefreshRun.objects.filter(tenant=contoso).first().trigger == "access"
    # Refreshed since: no further pull-in from the same grant.
    with time_machine.travel(t0 + timedelta(hours=4), tick=False):
        assert readiness_sweep().pulled_in == 0
    # The daily refresh is held to READINESS_MAX_DELAY (4 hours here) after the last one.
    assert ReadinessState.objects.get(tenant=contoso).next_refresh_at == t0 + timedelta(hours=7)


# --- Due times follow the settings in force ------------------------------------------------


def test_lowered_delays_bring_a_refresh_scheduled_under_the_old_ones_in(
    contoso: Tenant, admin: Any, settings: Any
) -> None:
    """The README's quick recipe on a tenant whose change was scheduled under the default delays."""
    seed_environment(contoso, devices=20)
    t0 = timezone.now().replace(microsecond=0)
    with time_machine.travel(t0, tick=False):
        readiness_sweep()  # the first assessment
        ReadinessState.objects.filter(tenant=contoso).update(delay=timedelta(hours=10))
    with time_machine.travel(t0 + timedelta(seconds=1), tick=False):
        env.security_setting_set(tenant=contoso, acting_user=admin, key="mde.tamper_protection", value="off")
        readiness_sweep()
    assert ReadinessState.objects.get(tenant=contoso).next_refresh_at > t0 + timedelta(hours=9)
    settings.READINESS_MIN_DELAY, settings.READINESS_MAX_DELAY = 20, 60
    with time_machine.travel(t0 + timedelta(seconds=5), tick=False):
        result = readiness_sweep()
    state = ReadinessState.objects.get(tenant=contoso)
    assert result.capped == 1
    assert state.delay == timedelta(seconds=60)
    # The earlier due time wins: the change's own time + the new delay, not now + the maximum.
    changed_at = Tenant.objects.get(pk=contoso.pk).environment_changed_at
    assert state.next_refresh_at == changed_at + timedelta(seconds=60)
    with time_machine.travel(changed_at + timedelta(seconds=60), tick=False):
        assert readiness_sweep().claimed_count == 1


def test_no_refresh_is_ever_due_later_than_the_maximum_delay(contoso: Tenant, fabrikam: Tenant, settings: Any) -> None:
    settings.READINESS_MAX_DELAY = 3600
    t0 = timezone.now().replace(microsecond=0)
    with time_machine.travel(t0, tick=False):
        readiness_sweep()
        for state in ReadinessState.objects.all():
            # A daily refresh never scheduled past an hour from its own refresh...
            assert state.next_refresh_at == state.last_refreshed_at + timedelta(hours=1)
        ReadinessState.objects.filter(tenant=fabrikam).update(next_refresh_at=t0 + timedelta(days=3))
    with time_machine.travel(t0 + timedelta(minutes=1), tick=False):
        # ... and one scheduled longer ago is brought in by the next sweep, in one UPDATE.
        readiness_sweep()
        assert ReadinessState.objects.get(tenant=fabrikam).next_refresh_at == t0 + timedelta(minutes=61)
        assert ReadinessState.objects.get(tenant=contoso).next_refresh_at == t0 + timedelta(hours=1)


def test_beat_runs_a_sweep_at_start_up(contoso: Tenant, settings: Any) -> None:
    from celery.signals import beat_init

    readiness_sweep()
    ReadinessState.objects.filter(tenant=contoso).update(next_refresh_at=timezone.now() + timedelta(days=5))
    settings.READINESS_MAX_DELAY = 600
    beat_init.send(sender=None)  # tasks run inline in the tests
    due = ReadinessState.objects.get(tenant=contoso).next_refresh_at
    assert due <= timezone.now() + timedelta(seconds=600)
