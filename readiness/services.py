"""Readiness: the sweep, the refresh, Request refresh and the monitoring phase.

How a refresh happens
---------------------
* The due time lives in ``ReadinessState.next_refresh_at``. After each refresh
  it is set ``READINESS_REFRESH_INTERVAL`` (24 h) ahead; an environment change
  pulls it in to ``environment_changed_at + delay``, where ``delay`` is this
  tenant's jittered delay between ``READINESS_MIN_DELAY`` and
  ``READINESS_MAX_DELAY``; Request refresh pulls it in to a few minutes.
* One beat entry runs ``readiness_sweep`` every minute. It claims the due
  tenants (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional
  UPDATE elsewhere), bumping ``generation`` and setting a lease, and enqueues
  one ``refresh_tenant(tenant_id, generation)`` task each.
* Claims are taken and enqueued in chunks of ``READINESS_CLAIM_CHUNK``: each
  chunk is claimed with a short lease (``READINESS_ENQUEUE_LEASE``), handed to
  the broker, and only then given the full ``READINESS_LEASE``. A sweep that
  dies or loses the broker mid-enqueue strands at most one chunk, for at most
  the short lease: the next sweep after it claims those tenants again.
* The refresh locks the state row, does nothing unless the generation is
  still the claimed one and not yet completed, and writes everything (statuses,
  figures, snapshot, run, regressions and their emails) in one transaction.
  A worker killed mid-refresh rolls back; its lease lapses and the sweep
  claims the tenant again with a new generation, so the old message, if
  redelivered, is a no-op.
* Every sweep closes the runs left "running" by a worker that died or could
  not record its failure: "superseded" once their generation has completed,
  "lost" once their lease has lapsed. No run stays "running" past the next
  sweep after that.
"""

from __future__ import annotations

import logging
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.utils import timezone

from audit.services import audit_record
from core.errors import Invalid
from permissions.selectors import provider_access_of
from readiness.catalogue import CATALOGUE_VERSION, ENTRIES
from readiness.exceptions import PhaseChanged, ReadinessNotMet, RefreshRateLimited
from readiness.models import (
    ActionState,
    ActionStatus,
    ReadinessState,
    RefreshRun,
    Regression,
    RunOutcome,
    RunTrigger,
    Snapshot,
)
from readiness.rules import EnvironmentFacts, environment_facts, evaluate
from tenancy.models import ServicePhase, Tenant, User
from tenancy.services import PhaseTransitionError, tenant_change_phase

logger = logging.getLogger("portal.readiness")


def draw_delay() -> timedelta:
    """A tenant's pick-up delay for its next environment change (the per-tenant jitter)."""
    low, high = settings.READINESS_MIN_DELAY, settings.READINESS_MAX_DELAY
    return timedelta(seconds=random.uniform(low, high))


def _new_state(tenant_id: int, now: datetime) -> ReadinessState:
    # A new tenant's first assessment is due at once: the next sweep runs it.
    return ReadinessState(tenant_id=tenant_id, next_refresh_at=now, delay=draw_delay())


def readiness_state_for(*, tenant: Tenant) -> ReadinessState:
    """The tenant's state, created lazily on first use."""
    state = ReadinessState.objects.filter(tenant=tenant).first()
    if state is None:
        ReadinessState.objects.bulk_create([_new_state(tenant.pk, timezone.now())], ignore_conflicts=True)
        state = ReadinessState.objects.get(tenant=tenant)
    return state


# --- The sweep ----------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    tenant_id: int
    generation: int
    # The claim's token (one per chunk): its lease is extended once the task is sent.
    token: uuid.UUID | None = None


@dataclass
class SweepResult:
    created: int = 0
    capped: int = 0
    pulled_in: int = 0
    claimed: list[Claimed] | None = None
    enqueued: int = 0
    reconciled: int = 0

    @property
    def claimed_count(self) -> int:
        return len(self.claimed or [])


def readiness_create_missing_states(*, now: datetime | None = None) -> int:
    """Create the states of tenants that have none yet, in bulk."""
    now = now or timezone.now()
    missing = list(Tenant.objects.filter(readiness_state__isnull=True).values_list("id", flat=True))
    if not missing:
        return 0
    ReadinessState.objects.bulk_create(
        [_new_state(tenant_id, now) for tenant_id in missing], batch_size=2000, ignore_conflicts=True
    )
    return len(missing)


def readiness_apply_delay_settings(*, now: datetime | None = None) -> int:
    """The delays in force win over those a refresh was scheduled under. Three bulk UPDATEs:

    * a tenant's jittered delay drawn under wider settings is brought within
      ``READINESS_MIN_DELAY``..``READINESS_MAX_DELAY`` (so a pending change is picked up
      by the new bound, by ``readiness_pull_in_changed`` right after);
    * no refresh is due later than ``now + READINESS_MAX_DELAY``.

    Only ever moves due times earlier; run by every sweep, the first one at start-up.
    Returns how many due times moved.
    """
    now = now or timezone.now()
    low = timedelta(seconds=settings.READINESS_MIN_DELAY)
    high = timedelta(seconds=settings.READINESS_MAX_DELAY)
    ReadinessState.objects.filter(delay__gt=high).update(delay=high)
    ReadinessState.objects.filter(delay__lt=low).update(delay=low)
    return ReadinessState.objects.filter(next_refresh_at__gt=now + high).update(next_refresh_at=now + high)


def readiness_pull_in_changed(*, now: datetime | None = None) -> int:
    """Environment changed since the last refresh: due at change time + the tenant's delay, if sooner.

    One UPDATE for all tenants; it only ever moves a due time earlier, so
    running it every sweep is idempotent.
    """
    changed_at = Subquery(Tenant.objects.filter(pk=OuterRef("tenant_id")).values("environment_changed_at")[:1])
    pick_up = ExpressionWrapper(changed_at + F("delay"), output_field=DateTimeField())
    pulled = ReadinessState.objects.filter(
        environment_seen_at__isnull=False,
        tenant__environment_changed_at__gt=F("environment_seen_at"),
        next_refresh_at__gt=ExpressionWrapper(
            F("tenant__environment_changed_at") + F("delay"), output_field=DateTimeField()
        ),
    ).update(next_refresh_at=pick_up)
    # Service provider access is granted or removed in Permissions, which doesn't stamp the environment;
    # a change there after the last refresh is picked up the same way.
    access_at = Subquery(provider_access_of(OuterRef("tenant_id")).values("updated_at")[:1])
    access_pick_up = ExpressionWrapper(access_at + F("delay"), output_field=DateTimeField())
    pulled += (
        ReadinessState.objects.filter(last_refreshed_at__isnull=False)
        .filter(Exists(provider_access_of(OuterRef("tenant_id")).filter(updated_at__gt=OuterRef("last_refreshed_at"))))
        .filter(
            Exists(
                provider_access_of(OuterRef("tenant_id")).filter(
                    updated_at__lt=ExpressionWrapper(
                        OuterRef("next_refresh_at") - OuterRef("delay"), output_field=DateTimeField()
                    )
                )
            )
        )
        .update(next_refresh_at=access_pick_up)
    )
    return pulled


def _due_filter(now: datetime) -> Q:
    return Q(next_refresh_at__lte=now) & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))


def readiness_claim_due(
    *, now: datetime | None = None, limit: int | None = None, lease_seconds: int | None = None
) -> list[Claimed]:
    """Claim the tenants whose refresh is due; each claimed tenant appears in exactly one sweep.

    ``SELECT ... FOR UPDATE SKIP LOCKED``, so racing sweeps take disjoint sets.
    ``lease_seconds`` defaults to the full ``READINESS_LEASE``; the sweep
    passes the short enqueue lease and extends it once the tasks are sent.
    """
    now = now or timezone.now()
    limit = limit or settings.READINESS_SWEEP_BATCH
    token = uuid.uuid4()
    lease_until = now + timedelta(seconds=settings.READINESS_LEASE if lease_seconds is None else lease_seconds)
    with transaction.atomic():
        candidates = ReadinessState.objects.filter(_due_filter(now)).order_by("next_refresh_at", "id")
        ids = list(candidates.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
        if not ids:
            return []
        ReadinessState.objects.filter(pk__in=ids).update(
            generation=F("generation") + 1, claim_token=token, lease_expires_at=lease_until
        )
        claimed = [
            Claimed(tenant_id=t, generation=g, token=token)
            for t, g in ReadinessState.objects.filter(pk__in=ids, claim_token=token).values_list(
                "tenant_id", "generation"
            )
        ]
        # Runs of earlier generations that never reported back: their worker died
        # or the message was lost. They are recorded as such, not left "running".
        RefreshRun.objects.filter(outcome=RunOutcome.RUNNING, tenant_id__in=[c.tenant_id for c in claimed]).update(
            outcome=RunOutcome.LOST, finished_at=now, error="The refresh didn't finish; it was claimed again."
        )
    return claimed


def readiness_extend_leases(*, claimed: list[Claimed], now: datetime | None = None) -> int:
    """The tasks of these claims are with the broker: give them the full lease (one UPDATE per claim token).

    A claim whose refresh already finished (eager runs, a fast worker) has no
    token any more and is left alone.
    """
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=settings.READINESS_LEASE)
    extended = 0
    for token in {c.token for c in claimed}:
        tenant_ids = [c.tenant_id for c in claimed if c.token == token]
        extended += ReadinessState.objects.filter(
            tenant_id__in=tenant_ids, claim_token=token, completed_generation__lt=F("generation")
        ).update(lease_expires_at=lease_until)
    return extended


LOST_ERROR = "The refresh didn't finish and its lease lapsed; the tenant is claimed again."
SUPERSEDED_ERROR = "This run stopped reporting (its failure couldn't be recorded); a retry finished the refresh."


def readiness_reconcile_runs(*, now: datetime | None = None) -> int:
    """Close the runs left "running" whose fate is already known. Two UPDATEs; safe to run any time.

    * superseded: the run's generation (or a later one) has completed, so a
      retry finished the work this run started;
    * lost: the run's generation is not complete and its claim is gone: the
      tenant was claimed again, or the lease lapsed.
    A run whose claim is still current and leased is really running and is left alone.
    """
    now = now or timezone.now()
    running = RefreshRun.objects.filter(outcome=RunOutcome.RUNNING)
    superseded = running.filter(
        Exists(
            ReadinessState.objects.filter(
                tenant_id=OuterRef("tenant_id"), completed_generation__gte=OuterRef("generation")
            )
        )
    ).update(outcome=RunOutcome.SUPERSEDED, finished_at=now, error=SUPERSEDED_ERROR)
    lost = running.filter(
        Exists(
            ReadinessState.objects.filter(
                tenant_id=OuterRef("tenant_id"), completed_generation__lt=OuterRef("generation")
            ).filter(
                Q(generation__gt=OuterRef("generation"))
                | Q(lease_expires_at__isnull=True)
                | Q(lease_expires_at__lt=now)
            )
        )
    ).update(outcome=RunOutcome.LOST, finished_at=now, error=LOST_ERROR)
    if superseded or lost:
        logger.info("readiness runs reconciled: %s superseded, %s lost", superseded, lost)
    return superseded + lost


def readiness_enqueue(claimed: list[Claimed]) -> int:
    """Hand one refresh task per claimed tenant to the broker, over one connection.

    If the broker is down the tenants stay claimed; their lease lapses and a
    later sweep claims them again, so nothing is lost.
    """
    from readiness.tasks import refresh_tenant

    if not claimed:
        return 0
    sent = 0
    if refresh_tenant.app.conf.task_always_eager:
        # Tests and single-process demos: run inline, one after the other.
        for item in claimed:
            refresh_tenant.apply_async(args=(item.tenant_id, item.generation))
            sent += 1
        return sent
    try:
        with refresh_tenant.app.producer_or_acquire() as producer:
            for item in claimed:
                refresh_tenant.apply_async(args=(item.tenant_id, item.generation), producer=producer)
                sent += 1
    except Exception:  # noqa: BLE001 - the lease brings these tenants back; never crash the sweep
        logger.exception("could not enqueue %s readiness refreshes; their lease will lapse", len(claimed) - sent)
    return sent


def readiness_sweep(*, now: datetime | None = None) -> SweepResult:
    """The periodic sweep: close finished runs, create missing states, pull in changed tenants,
    then claim and enqueue the due ones, chunk by chunk."""
    now = now or timezone.now()
    claimed: list[Claimed] = []
    result = SweepResult(claimed=claimed)
    result.reconciled = readiness_reconcile_runs(now=now)
    result.created = readiness_create_missing_states(now=now)
    result.capped = readiness_apply_delay_settings(now=now)
    result.pulled_in = readiness_pull_in_changed(now=now)
    budget = settings.READINESS_SWEEP_BATCH
    while budget > 0:
        chunk = readiness_claim_due(
            now=now, limit=min(settings.READINESS_CLAIM_CHUNK, budget), lease_seconds=settings.READINESS_ENQUEUE_LEASE
        )
        if not chunk:
            break
        claimed.extend(chunk)
        sent = readiness_enqueue(chunk)
        result.enqueued += sent
        readiness_extend_leases(claimed=chunk[:sent], now=now)
        if sent < len(chunk):
            # The broker is failing: the rest of this chunk comes back when its short
            # lease lapses, and nothing more is claimed that can't be sent now.
            break
        budget -= len(chunk)
    return result


# --- The refresh ----------------------------------------------------------------------


def _trigger(state: ReadinessState, tenant: Tenant) -> str:
    if state.last_refreshed_at is None:
        return RunTrigger.FIRST
    if state.refresh_requested_at and state.refresh_requested_at >= state.last_refreshed_at:
        return RunTrigger.REQUESTED
    if state.environment_seen_at is None or tenant.environment_changed_at > state.environment_seen_at:
        return RunTrigger.ENVIRONMENT
    access_changed_at = getattr(state, "access_changed_at", None)
    if access_changed_at is not None and access_changed_at > state.last_refreshed_at:
        return RunTrigger.ACCESS
    return RunTrigger.SCHEDULED


def readiness_refresh(*, tenant_id: int, generation: int) -> str:
    """Refresh one tenant's assessment for its outstanding claim. Safe to run any number of times.

    The message carries the generation it was enqueued for. While that claim, or
    a later one, is not completed, whichever message arrives first does the
    work, for the newest claim: a message that waited in a long queue past its
    lease (and was claimed again meanwhile) still makes progress rather than
    being thrown away, so a backlog can't livelock the refresh. Once the newest
    claim is completed every other message is a no-op.

    Returns "succeeded", "skipped" (already done) or raises (the task retries).
    """
    peek = ReadinessState.objects.filter(tenant_id=tenant_id).values("generation", "completed_generation").first()
    if peek is None or peek["completed_generation"] >= min(generation, peek["generation"]):
        return "skipped"
    generation = peek["generation"]
    started = timezone.now()
    run = RefreshRun.objects.create(
        tenant_id=tenant_id, generation=generation, started_at=started, worker=socket.gethostname()[:200]
    )
    clock = time.perf_counter()
    try:
        with transaction.atomic():
            state = (
                ReadinessState.objects.select_for_update()
                .select_related("tenant")
                # When service provider access last changed, read in the same statement (for the run's trigger).
                .annotate(
                    access_changed_at=Subquery(provider_access_of(OuterRef("tenant_id")).values("updated_at")[:1])
                )
                .get(tenant_id=tenant_id)
            )
            if state.completed_generation >= state.generation:
                # Another message for this tenant finished first.
                RefreshRun.objects.filter(pk=run.pk).update(
                    outcome=RunOutcome.SKIPPED, finished_at=timezone.now(), duration_ms=0
                )
                return "skipped"
            if state.generation != generation:
                # Claimed again while this message waited for the lock: the work is for the newest claim.
                generation = state.generation
                RefreshRun.objects.filter(pk=run.pk).update(generation=generation)
            tenant = state.tenant  # read with the lock, before the environment itself
            trigger = _trigger(state, tenant)
            state.environment_seen_at = tenant.environment_changed_at
            facts = environment_facts(tenant=tenant)
            now = timezone.now()
            regressions = _apply(state=state, tenant=tenant, facts=facts, now=now, run=run)
            # Earlier runs of this claim that died without a word (a failure that
            # couldn't be recorded) are done with: this run finished their work.
            RefreshRun.objects.filter(
                tenant_id=tenant_id, outcome=RunOutcome.RUNNING, generation__lte=generation
            ).exclude(pk=run.pk).update(outcome=RunOutcome.SUPERSEDED, finished_at=now, error=SUPERSEDED_ERROR)
            RefreshRun.objects.filter(pk=run.pk).update(
                outcome=RunOutcome.SUCCEEDED,
                trigger=trigger,
                finished_at=timezone.now(),
                duration_ms=int((time.perf_counter() - clock) * 1000),
                actions_completed=state.actions_completed,
                actions_total=state.actions_total,
                devices_protected=state.devices_protected,
                devices_total=state.devices_total,
                devices_target=state.devices_target,
                identities_protected=state.identities_protected,
                identities_total=state.identities_total,
                identities_target=state.identities_target,
                regressions_found=regressions,
            )
    except Exception as exc:
        _record_run_failure(run_id=run.pk, exc=exc, duration_ms=int((time.perf_counter() - clock) * 1000))
        raise
    return "succeeded"


def _record_run_failure(*, run_id: int, exc: BaseException, duration_ms: int) -> None:
    try:
        RefreshRun.objects.filter(pk=run_id, outcome=RunOutcome.RUNNING).update(
            outcome=RunOutcome.FAILED,
            finished_at=timezone.now(),
            duration_ms=duration_ms,
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
    except DatabaseError:
        # The database itself is gone: the run stays "running" until a retry
        # finishes the refresh (which closes it as superseded) or the next sweep
        # after its lease lapses marks it lost. Never mask the cause.
        logger.warning("could not record the failed readiness run %s", run_id)


def _apply(*, state: ReadinessState, tenant: Tenant, facts: EnvironmentFacts, now: datetime, run: RefreshRun) -> int:
    """Write the new statuses, figures and snapshot; open and close regressions. Returns new regressions."""
    existing = {a.key: a for a in ActionStatus.objects.filter(tenant=tenant)}
    previous_status = {key: a.status for key, a in existing.items()}
    to_create: list[ActionStatus] = []
    to_update: list[ActionStatus] = []
    counts = {s: 0 for s in ActionState.values}
    for entry in ENTRIES:  # the catalogue (17 entries), not the data
        status, result = evaluate(entry, facts)
        counts[status] += 1
        row = existing.get(entry.key)
        if row is None:
            row = ActionStatus(tenant=tenant, key=entry.key, status=status, last_status_change=now)
            to_create.append(row)
        else:
            if row.status != status:
                row.status = status
                row.last_status_change = now
            to_update.append(row)
        row.last_checked_at = now
        row.done, row.total, row.value, row.detail = result.done, result.total, result.value, result.detail[:300]
    # Entries dropped from the catalogue since the last refresh leave no stale rows behind.
    ActionStatus.objects.filter(tenant=tenant).exclude(key__in=[e.key for e in ENTRIES]).delete()
    if to_create:
        ActionStatus.objects.bulk_create(to_create)
    if to_update:
        ActionStatus.objects.bulk_update(
            to_update, ["status", "last_status_change", "last_checked_at", "done", "total", "value", "detail"]
        )
    previous = {
        "devices_unprotected": state.devices_unprotected,
        "identities_unprotected": state.identities_unprotected,
        "refreshed": state.last_refreshed_at is not None,
    }
    state.catalogue_version = CATALOGUE_VERSION
    state.actions_total = len(ENTRIES)
    state.actions_completed = counts[ActionState.COMPLETED]
    state.actions_in_progress = counts[ActionState.IN_PROGRESS]
    state.actions_not_started = counts[ActionState.NOT_STARTED]
    for name in (
        "devices_total",
        "devices_onboarded",
        "devices_protected",
        "devices_not_onboarded",
        "devices_passive",
        "devices_disabled",
        "devices_target",
        "identities_total",
        "identities_protected",
        "identities_target",
        "domain_controllers_total",
        "domain_controllers_with_sensor",
        "enabled_users",
    ):
        setattr(state, name, getattr(facts, name))
    statuses = {row.key: row.status for row in [*to_create, *to_update]}
    # What each rule found this time ("Tamper protection is Off; it needs to be On."), for regression emails.
    details = {row.key: row.detail for row in [*to_create, *to_update]}
    required_done = all(statuses.get(e.key) == ActionState.COMPLETED for e in ENTRIES if e.required)
    ready = required_done and state.devices_target_met and state.identities_target_met
    if ready and not state.is_ready:
        state.ready_since = now
    if not ready:
        state.ready_since = None
    state.is_ready = ready
    state.last_refreshed_at = now
    # The daily refresh, never later than READINESS_MAX_DELAY ahead (the sweep holds every tenant to that).
    state.next_refresh_at = now + timedelta(
        seconds=min(settings.READINESS_REFRESH_INTERVAL, settings.READINESS_MAX_DELAY)
    )
    state.delay = draw_delay()
    state.completed_generation = state.generation
    state.claim_token = None
    state.lease_expires_at = None
    state.save()
    Snapshot.objects.create(
        tenant=tenant,
        run=run,
        taken_at=now,
        actions_total=state.actions_total,
        actions_completed=state.actions_completed,
        actions_in_progress=state.actions_in_progress,
        devices_protected=state.devices_protected,
        devices_target=state.devices_target,
        identities_protected=state.identities_protected,
        identities_target=state.identities_target,
        is_ready=ready,
    )
    return _review_regressions(
        tenant=tenant,
        state=state,
        previous=previous,
        previous_status=previous_status,
        statuses=statuses,
        details=details,
        now=now,
    )


# Regressions are only tracked once the service has started (monitoring or active).
REVIEWED_PHASES = frozenset({ServicePhase.MONITORING, ServicePhase.ACTIVE})


def _review_regressions(
    *,
    tenant: Tenant,
    state: ReadinessState,
    previous: dict[str, Any],
    previous_status: dict[str, str],
    statuses: dict[str, str],
    details: dict[str, str],
    now: datetime,
) -> int:
    """Open a regression (and queue one email) for each thing that got worse; close fixed ones."""
    from readiness.catalogue import ENTRIES_BY_KEY

    open_regressions = {r.key: r for r in Regression.objects.filter(tenant=tenant, resolved_at__isnull=True)}
    resolved: list[int] = []
    opened: list[Regression] = []
    reviewing = tenant.service_phase in REVIEWED_PHASES and previous["refreshed"]

    for key, status in statuses.items():
        if key in open_regressions and status == ActionState.COMPLETED:
            resolved.append(open_regressions[key].pk)
        elif (
            reviewing
            and key not in open_regressions
            and previous_status.get(key) == ActionState.COMPLETED
            and status != ActionState.COMPLETED
        ):
            entry = ENTRIES_BY_KEY[key]
            opened.append(
                Regression(
                    tenant=tenant,
                    key=key,
                    title=f"“{entry.title}” is no longer completed",
                    detail=(
                        f"Its status changed from {ActionState.COMPLETED.label} to {ActionState(status).label} "
                        f"(priority: {entry.priority_label}). {details.get(key, '')}"
                    ).strip()[:500],
                    detected_at=now,
                )
            )
    for key, now_count, noun in (
        ("assets.devices", state.devices_unprotected, "devices"),
        ("assets.identities", state.identities_unprotected, "identities"),
    ):
        regression = open_regressions.get(key)
        if regression is not None and now_count <= (regression.baseline or 0):
            resolved.append(regression.pk)
        elif regression is None and reviewing and now_count > previous[f"{noun}_unprotected"]:
            new = now_count - previous[f"{noun}_unprotected"]
            opened.append(
                Regression(
                    tenant=tenant,
                    key=key,
                    title=f"{new:,} new unprotected {noun}",
                    detail=f"{now_count:,} {noun} are now unprotected, up from {previous[f'{noun}_unprotected']:,}.",
                    baseline=previous[f"{noun}_unprotected"],
                    detected_at=now,
                )
            )
    if resolved:
        Regression.objects.filter(pk__in=resolved).update(resolved_at=now)
    if not opened:
        return 0
    created = Regression.objects.bulk_create(opened)
    _notify_regressions(tenant=tenant, regressions=created)
    for regression in created:
        audit_record(
            tenant=tenant,
            acting_user=None,
            action="readiness.regression_detected",
            summary=f"Readiness regression: {regression.title}",
            target=regression,
            after={"key": regression.key, "detail": regression.detail},
        )
    return len(created)


def _notify_regressions(*, tenant: Tenant, regressions: list[Regression]) -> None:
    """One email per regression to the service review contacts, through the outbox (deduplicated)."""
    from contacts.selectors import service_review_recipient_emails
    from outbox.services import outbox_enqueue

    recipients = service_review_recipient_emails(tenant=tenant)
    if not recipients:
        # Nobody to tell: fall back to the tenant's admins rather than lose the warning.
        from tenancy.selectors import tenant_admin_emails

        recipients = tenant_admin_emails(tenant)
    if not recipients:
        return
    for regression in regressions:
        outbox_enqueue(
            tenant=tenant,
            kind="readiness.regression",
            to=recipients,
            subject=f"Your Defender Experts readiness has changed: {regression.title}",
            template="readiness/emails/regression",
            context={"regression": regression, **regression_links(regression)},
            dedupe_key=f"readiness.regression:{regression.pk}",
        )


def regression_links(regression: Regression) -> dict[str, Any]:
    """What the email says to do: the catalogue's "How to fix it" and a link to the row or list."""
    from django.urls import reverse

    from readiness.catalogue import ENTRIES_BY_KEY

    entry = ENTRIES_BY_KEY.get(regression.key)
    if entry is not None:
        anchor = "#action-" + entry.key.replace(".", "-")
        return {"how_to_fix": entry.how_to_fix, "link": reverse("readiness:service_status") + anchor}
    if regression.key == "assets.devices":
        return {
            "how_to_fix": "Onboard the new devices to Defender for Endpoint and set Defender Antivirus to active mode.",
            "link": reverse("readiness:devices", args=["unprotected"]),
        }
    return {
        "how_to_fix": "Install Defender for Identity sensors on the domain controllers that authenticate them.",
        "link": reverse("readiness:identities", args=["unprotected"]),
    }


# --- Request refresh --------------------------------------------------------------------


@transaction.atomic
def readiness_request_refresh(*, tenant: Tenant, acting_user: User) -> ReadinessState:
    """An admin asks for a refresh: due within READINESS_REQUEST_DELAY, at most once per rate-limit window."""
    readiness_state_for(tenant=tenant)
    state = ReadinessState.objects.select_for_update().get(tenant=tenant)
    now = timezone.now()
    window = timedelta(seconds=settings.READINESS_REQUEST_RATE_LIMIT)
    if state.refresh_requested_at is not None and now - state.refresh_requested_at < window:
        allowed_at = state.refresh_requested_at + window
        requested = f"{timezone.localtime(state.refresh_requested_at):%H:%M} UTC"
        if state.last_refreshed_at is not None and state.last_refreshed_at > state.refresh_requested_at:
            ran = f"{timezone.localtime(state.last_refreshed_at):%H:%M} UTC"
            outcome = f"A refresh was requested at {requested} and ran at {ran}."
        else:
            outcome = (
                f"A refresh was already requested at {requested}; expect the latest status by "
                f"{timezone.localtime(state.next_refresh_at):%H:%M} UTC."
            )
        raise RefreshRateLimited(
            f"{outcome} You can request another after {timezone.localtime(allowed_at):%H:%M} UTC.",
            allowed_at=allowed_at,
        )
    # Still the emulated delay: somewhere in the next few minutes, never at once.
    request_delay = settings.READINESS_REQUEST_DELAY
    due = now + timedelta(seconds=random.uniform(min(60, request_delay) / 2, request_delay))
    before = state.next_refresh_at
    state.refresh_requested_at = now
    state.refresh_requested_by = acting_user
    if due < state.next_refresh_at:
        state.next_refresh_at = due
    state.save(update_fields=["refresh_requested_at", "refresh_requested_by", "next_refresh_at"])
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="readiness.refresh_requested",
        summary=f"Requested a readiness refresh (expected by {timezone.localtime(state.next_refresh_at):%H:%M} UTC)",
        target=state,
        before={"next_refresh_at": before.isoformat()},
        after={"next_refresh_at": state.next_refresh_at.isoformat()},
    )
    return state


# --- Monitoring phase -----------------------------------------------------------------------


def monitoring_ends_at(tenant: Tenant) -> datetime | None:
    if tenant.service_phase != ServicePhase.MONITORING:
        return None
    return tenant.service_phase_changed_at + timedelta(days=settings.READINESS_MONITORING_DAYS)


def _phase_as_read(*, tenant: Tenant, expected_phase: str | None, target: ServicePhase) -> bool:
    """Lock the tenant and compare its phase with the one the page showed.

    True when the tenant is already in ``target`` (the same form sent twice, or
    two managers making the same move: nothing to do); ``PhaseChanged`` when it
    moved anywhere else since the page was read; False when the move can go on.
    """
    current = Tenant.objects.select_for_update().get(pk=tenant.pk)
    tenant.service_phase, tenant.service_phase_changed_at = current.service_phase, current.service_phase_changed_at
    if expected_phase is None or current.service_phase == expected_phase:
        return False
    if current.service_phase == target:
        return True
    raise PhaseChanged(
        f"{tenant.name} moved to the {ServicePhase(current.service_phase).label} phase since you opened this page, "
        "so nothing was changed.",
        current=current,
    )


@transaction.atomic
def readiness_start_monitoring(
    *, tenant: Tenant, acting_user: User, reason: str = "", expected_phase: str | None = None
) -> Tenant:
    """The SDM starts the monitoring phase; refused unless readiness is met or a reason is given.

    ``expected_phase`` is the phase the form was read at (see ``_phase_as_read``).
    """
    if _phase_as_read(tenant=tenant, expected_phase=expected_phase, target=ServicePhase.MONITORING):
        return tenant
    reason = (reason or "").strip()
    state = readiness_state_for(tenant=tenant)
    if tenant.service_phase != ServicePhase.PREPARING:
        raise Invalid(
            f"{tenant.name} is in the {ServicePhase(tenant.service_phase).label} phase; the monitoring phase can "
            "only start from Preparing."
        )
    if not state.is_ready and not reason:
        raise ReadinessNotMet(
            f"Readiness isn't met for {tenant.name}: "
            + _not_met_summary(state)
            + " Give a reason to start the monitoring phase anyway."
        )
    try:
        tenant = tenant_change_phase(
            tenant=tenant, acting_user=acting_user, to_phase=ServicePhase.MONITORING, reason=reason
        )
    except PhaseTransitionError as exc:
        raise Invalid(str(exc)) from exc
    audit_record(
        tenant=tenant,
        acting_user=acting_user,
        action="readiness.monitoring_started",
        summary=(
            "Started the monitoring phase with readiness met"
            if state.is_ready
            else f"Started the monitoring phase before readiness was met (reason: {reason})"
        ),
        target=tenant,
        after={"readiness_met": state.is_ready, "reason": reason},
    )
    return tenant


def _not_met_summary(state: ReadinessState) -> str:
    """What stands between the tenant and readiness: required actions and asset targets (one query)."""
    if not state.has_refreshed:
        return "the first assessment hasn't run yet."
    from readiness.catalogue import ENTRIES

    required = [e.key for e in ENTRIES if e.required]
    left = (
        ActionStatus.objects.filter(tenant_id=state.tenant_id, key__in=required)
        .exclude(status=ActionState.COMPLETED)
        .count()
    )
    parts = []
    if left:
        parts.append(
            f"{left} of {len(required)} actions with the Complete now priority "
            f"{'is' if left == 1 else 'are'}n't completed"
        )
    if not state.devices_target:
        parts.append("no Defender for Endpoint licences set a device target")
    elif not state.devices_target_met:
        parts.append(f"{state.devices_to_protect:,} more devices to protect")
    if not state.identities_target:
        parts.append("no Defender for Identity licences set an identity target")
    elif not state.identities_target_met:
        parts.append(f"{state.identities_to_protect:,} more identities to protect")
    return (", ".join(parts) or "required actions aren't completed") + "."


@transaction.atomic
def readiness_confirm_active(*, tenant: Tenant, acting_user: User, expected_phase: str | None = None) -> Tenant:
    """After the configured monitoring days, the SDM confirms the service Active.

    ``expected_phase`` is the phase the form was read at (see ``_phase_as_read``).
    """
    if _phase_as_read(tenant=tenant, expected_phase=expected_phase, target=ServicePhase.ACTIVE):
        return tenant
    ends = monitoring_ends_at(tenant)
    if ends is None:
        raise Invalid(f"{tenant.name} isn't in the monitoring phase.")
    if timezone.now() < ends:
        raise Invalid(
            f"The monitoring phase of {tenant.name} runs until {timezone.localtime(ends):%d %b %Y %H:%M} UTC; "
            "confirm the service Active after that."
        )
    try:
        return tenant_change_phase(tenant=tenant, acting_user=acting_user, to_phase=ServicePhase.ACTIVE)
    except PhaseTransitionError as exc:
        raise Invalid(str(exc)) from exc
