"""The onboarding services directly: rules, audit, and concurrency."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from contacts.models import NotificationType
from onboarding.exceptions import GuideConflict, GuideNotAvailable, InvitationError, StepIncomplete
from onboarding.models import GuideProgress, GuideStep, Invitation
from onboarding.selectors import guide_progress, guide_step_states
from onboarding.services import (
    guide_finish,
    guide_start,
    guide_step_complete,
    invitation_send,
)
from outbox.models import OutboxMessage
from tenancy.models import ServicePhase
from tests.test_onboarding_guide import add_contact


def run_together(*jobs: Any) -> list[Any]:
    """Start the jobs at the same instant in their own threads (own DB connections)."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def runner(i: int, job: Any) -> None:
        barrier.wait()
        try:
            results[i] = job()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each job raised
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db
def test_guide_start_refuses_a_tenant_that_was_never_invited(contoso, admin):
    with pytest.raises(GuideNotAvailable):
        guide_start(tenant=contoso, acting_user=admin)
    assert not GuideProgress.objects.exists()


@pytest.mark.django_db
def test_guide_start_is_idempotent(contoso, sdm, admin, secadmin):
    invitation_send(tenant=contoso, acting_user=sdm)
    first = guide_start(tenant=contoso, acting_user=admin)
    second = guide_start(tenant=contoso, acting_user=secadmin)
    assert first.pk == second.pk and second.started_by == admin
    assert AuditEvent.objects.filter(tenant=contoso, action="onboarding.guide_started").count() == 1
    assert contoso.service_phase == ServicePhase.SETTING_UP


@pytest.mark.django_db
def test_stale_version_raises_a_conflict_naming_who_changed_it(contoso, sdm, admin, secadmin):
    invitation_send(tenant=contoso, acting_user=sdm)
    guide_start(tenant=contoso, acting_user=admin)
    progress = guide_progress(tenant=contoso)
    progress.current_step = GuideStep.INCIDENT_CONTACT
    progress.completed_steps = ["permissions"]
    progress.save()
    add_contact(contoso, admin, NotificationType.INCIDENT)
    guide_step_complete(tenant=contoso, acting_user=admin, step=GuideStep.INCIDENT_CONTACT, expected_version=0)
    with pytest.raises(GuideConflict) as caught:
        guide_step_complete(tenant=contoso, acting_user=secadmin, step=GuideStep.INCIDENT_CONTACT, expected_version=0)
    assert "admin changed the guide" in caught.value.message


@pytest.mark.django_db
def test_close_needs_every_earlier_step(contoso, sdm, admin):
    invitation_send(tenant=contoso, acting_user=sdm)
    guide_start(tenant=contoso, acting_user=admin)
    GuideProgress.objects.filter(tenant=contoso).update(
        current_step=GuideStep.NEXT_STEPS, completed_steps=["permissions"]
    )
    with pytest.raises(StepIncomplete, match=r"Complete Incident contact, Service review contact first\."):
        guide_finish(tenant=contoso, acting_user=admin, expected_version=0)
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.SETTING_UP


def test_stepper_states_are_current_done_and_not_started():
    progress = GuideProgress(
        current_step=GuideStep.SERVICE_REVIEW_CONTACT, completed_steps=["permissions", "incident-contact"]
    )
    states = {
        s.slug: (s.state, s.reachable) for s in guide_step_states(progress=progress, viewing=GuideStep.INCIDENT_CONTACT)
    }
    assert states == {
        "permissions": ("done", True),
        # Optional: reached from Permissions, never the current step, not needed to finish.
        "exclusions": ("not_started", True),
        "incident-contact": ("current", True),
        "service-review-contact": ("not_started", True),
        # The last step: it carries Close (no separate Close step).
        "next-steps": ("not_started", False),
    }


@pytest.mark.django_db(transaction=True)
def test_two_admins_pressing_next_at_the_same_instant_one_wins_one_gets_a_conflict(contoso, sdm, admin, secadmin):
    invitation_send(tenant=contoso, acting_user=sdm)
    guide_start(tenant=contoso, acting_user=admin)
    GuideProgress.objects.filter(tenant=contoso).update(current_step=GuideStep.SERVICE_REVIEW_CONTACT, completed_steps=[
        "permissions", "incident-contact"])  # fmt: skip
    add_contact(contoso, admin, NotificationType.SERVICE_REVIEW, name="Review person")

    def press(user: Any) -> Any:
        return lambda: guide_step_complete(
            tenant=contoso, acting_user=user, step=GuideStep.SERVICE_REVIEW_CONTACT, expected_version=0
        )

    results = run_together(press(admin), press(secadmin))
    assert sorted(type(r).__name__ for r in results) == ["GuideConflict", "GuideProgress"]
    progress = GuideProgress.objects.get(tenant=contoso)
    assert progress.version == 1 and progress.current_step == GuideStep.NEXT_STEPS
    assert AuditEvent.objects.filter(tenant=contoso, action="onboarding.guide_step_completed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_staff_clicking_ready_to_onboard_at_once_send_one_email(contoso, sdm, admin, monkeypatch):
    from tests import factories

    monkeypatch.setattr("outbox.services._kick", lambda message_id: None)
    other = factories.staff(email="sdm2@experts.example")
    results = run_together(
        lambda: invitation_send(tenant=contoso, acting_user=sdm),
        lambda: invitation_send(tenant=contoso, acting_user=other),
    )
    assert sorted(type(r).__name__ for r in results) == ["Invitation", "InvitationError"]
    assert OutboxMessage.objects.filter(kind="onboarding.welcome").count() == 1
    assert Invitation.objects.count() == 1
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.INVITED


@pytest.mark.django_db
def test_resend_audit_names_the_revoked_links(contoso, sdm, admin):
    invitation_send(tenant=contoso, acting_user=sdm)
    invitation_send(tenant=contoso, acting_user=sdm, resend=True)
    event = AuditEvent.objects.get(tenant=contoso, action="onboarding.welcome_resent")
    assert event.after["revoked_links"] == 1
    assert "1 earlier link stopped working" in event.summary
    assert Invitation.objects.active().count() == 1


@pytest.mark.django_db
def test_invitation_error_keeps_the_tenant_as_it_was(contoso, sdm):
    with pytest.raises(InvitationError):
        invitation_send(tenant=contoso, acting_user=sdm)
    assert not AuditEvent.objects.filter(tenant=contoso).exists()


@pytest.mark.django_db
def test_the_console_shows_the_readiness_summary(login, contoso, fabrikam, sdm, admin):
    from readiness.models import ReadinessState

    invitation_send(tenant=contoso, acting_user=sdm)
    ReadinessState.objects.create(
        tenant=contoso, last_refreshed_at=timezone.now(), actions_total=10, actions_completed=4, is_ready=False
    )
    html = login(sdm).get(reverse("onboarding_provider:console")).content.decode()
    assert "Not ready · 4 of 10 actions completed" in html
    assert "Not assessed yet" in html  # Fabrikam, never refreshed


# --- Removed service provider access -----------------------------------------------


def _levels(tenant: Any) -> Any:
    from permissions.selectors import access_levels_state

    return access_levels_state(tenant=tenant)


def _submit(tenant: Any, user: Any, **kwargs: Any) -> GuideProgress:
    from onboarding.services import guide_permissions_submit

    defaults = {
        "investigate": True,
        "respond": False,
        "confirm_skip": True,
        "expected_version": guide_progress(tenant=tenant).version,
        "permissions_version": _levels(tenant).version,
    }
    return guide_permissions_submit(tenant=tenant, acting_user=user, **{**defaults, **kwargs})


@pytest.mark.django_db
def test_a_plain_permissions_submit_never_undoes_a_removal(contoso, sdm, admin):
    from permissions.exceptions import StaleEdit
    from permissions.services import provider_access_remove

    invitation_send(tenant=contoso, acting_user=sdm)
    guide_start(tenant=contoso, acting_user=admin)
    _submit(contoso, admin)
    provider_access_remove(tenant=contoso, acting_user=admin, expected_version=_levels(contoso).version)
    with pytest.raises(StaleEdit):
        _submit(contoso, admin)  # rendered before the removal: no restore flag
    assert _levels(contoso).removed
    # "Restore" on a form rendered while access was active is stale too.
    with pytest.raises(StaleEdit):
        _submit(contoso, admin, restore_access=True, permissions_version=_levels(contoso).version - 1)
    assert _levels(contoso).removed
    _submit(contoso, admin, restore_access=True)
    state = _levels(contoso)
    assert state.provider_access_granted and state.investigate and not state.respond
    assert AuditEvent.objects.filter(action="permissions.provider_access_restored", actor=admin).count() == 1
    # Restore asked for on access that is active (someone restored it meanwhile): stale.
    with pytest.raises(StaleEdit):
        _submit(contoso, admin, restore_access=True)


@pytest.mark.django_db
def test_the_first_close_needs_active_access_but_a_re_close_does_not(contoso, sdm, admin):
    from permissions.services import provider_access_remove

    invitation_send(tenant=contoso, acting_user=sdm)
    guide_start(tenant=contoso, acting_user=admin)
    _submit(contoso, admin)
    for step, notification_type in (
        (GuideStep.INCIDENT_CONTACT, NotificationType.INCIDENT),
        (GuideStep.SERVICE_REVIEW_CONTACT, NotificationType.SERVICE_REVIEW),
    ):
        add_contact(contoso, admin, notification_type, name=f"Person {step.value}")
        guide_step_complete(
            tenant=contoso, acting_user=admin, step=step, expected_version=guide_progress(tenant=contoso).version
        )
    provider_access_remove(tenant=contoso, acting_user=admin, expected_version=_levels(contoso).version)
    with pytest.raises(StepIncomplete, match="Service provider access was removed"):
        guide_finish(tenant=contoso, acting_user=admin, expected_version=guide_progress(tenant=contoso).version)
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.SETTING_UP
    _submit(contoso, admin, restore_access=True)
    guide_finish(tenant=contoso, acting_user=admin, expected_version=guide_progress(tenant=contoso).version)
    contoso.refresh_from_db()
    assert contoso.service_phase == ServicePhase.PREPARING
    # Removed again after finishing: closing a reopened guide still works (it only exits).
    provider_access_remove(tenant=contoso, acting_user=admin, expected_version=_levels(contoso).version)
    guide_finish(tenant=contoso, acting_user=admin, expected_version=guide_progress(tenant=contoso).version)
    assert guide_progress(tenant=contoso).finished_by == admin


@pytest.mark.django_db
def test_progress_at_the_former_close_step_moves_to_next_steps(contoso, fabrikam):
    """The data migration that folded Close into Next steps: a finished guide keeps Next steps done; an unfinished
    one that stood at Close still has Next steps (its Close) to do."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("onboarding.migrations.0003_close_on_next_steps")
    before = ["permissions", "incident-contact", "service-review-contact", "next-steps"]
    GuideProgress.objects.create(
        tenant=contoso, current_step="close", completed_steps=[*before, "close"], finished_at=timezone.now()
    )
    GuideProgress.objects.create(tenant=fabrikam, current_step="close", completed_steps=before)
    migration.close_into_next_steps(apps, None)
    finished, unfinished = (GuideProgress.objects.get(tenant=t) for t in (contoso, fabrikam))
    assert (finished.current_step, finished.completed_steps) == ("next-steps", before)
    assert (unfinished.current_step, unfinished.completed_steps) == ("next-steps", before[:-1])
