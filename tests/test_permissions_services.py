"""Services of the permissions app: levels, warnings, removal, renewal, sweeps, concurrency, audit."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connections, transaction

from audit.models import AuditEvent
from core.context import request_context
from outbox.models import OutboxMessage
from permissions.exceptions import (
    ALL_DEVICES_WARNING,
    SKIP_PERMISSIONS_WARNING,
    AllDevicesNeedsConfirmation,
    GrantNotLive,
    InvalidEndDate,
    PermissionsError,
    ProviderAccessRemoved,
    ReauthenticationRequired,
    ReducedAccessNeedsConfirmation,
    StaleEdit,
)
from permissions.models import AccessGrant, AccessState, RevokedReason, ServiceProviderAccess
from permissions.selectors import access_health, access_levels_state, provider_access_granted
from permissions.services import (
    access_grant_renew,
    access_grants_expire_due,
    access_grants_send_reminders,
    access_levels_set,
    access_settings_save,
    all_devices_set,
    provider_access_remove,
    provider_access_restore,
)
from permissions.tasks import sweep_access_grants

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _set(tenant, user, *, investigate=True, respond=False, **kw):
    version = access_levels_state(tenant=tenant).version
    kw.setdefault("recently_authenticated", True)
    return access_levels_set(
        tenant=tenant, acting_user=user, investigate=investigate, respond=respond, expected_version=version, **kw
    )


# --- defaults and the contract ---------------------------------------------------------


def test_a_new_tenant_reads_defaults_without_writing(contoso):
    state = access_levels_state(tenant=contoso)
    assert (state.investigate, state.respond, state.all_devices, state.version) == (False, False, True, 1)
    assert state.state == AccessState.PENDING
    assert not provider_access_granted(tenant=contoso)
    assert access_health(tenant=contoso).state == "none"
    assert not ServiceProviderAccess.objects.exists()


def test_granting_a_level_grants_the_relationship_with_default_180_days(contoso, admin):
    with time_machine.travel(T0, tick=False):
        state = _set(contoso, admin)
    assert state.investigate and not state.respond
    assert state.version == 2
    assert provider_access_granted(tenant=contoso)
    access = ServiceProviderAccess.objects.get(tenant=contoso)
    assert access.granted_by == admin and access.granted_at == T0
    grant = AccessGrant.objects.get(tenant=contoso)
    assert grant.role == "security_reader"
    assert grant.ends_at == T0 + timedelta(days=180)
    actions = list(AuditEvent.objects.filter(tenant=contoso).order_by("id").values_list("action", flat=True))
    assert actions == ["permissions.provider_access_granted", "permissions.level_granted"]
    ev = AuditEvent.objects.get(action="permissions.level_granted")
    assert ev.actor == admin and ev.before == {"level": "investigate", "on": False}
    assert ev.after["on"] is True and ev.after["role"] == "security_reader"


def test_respond_grants_security_operator_and_needs_recent_sign_in(contoso, admin):
    _set(contoso, admin)
    with pytest.raises(ReauthenticationRequired) as exc:
        _set(contoso, admin, respond=True, recently_authenticated=False)
    assert "Confirm your password" in exc.value.message
    assert not AccessGrant.objects.filter(level="respond").exists()
    state = _set(contoso, admin, respond=True, recently_authenticated=True)
    assert state.respond and state.investigate
    assert AccessGrant.objects.get(level="respond").role == "security_operator"


def test_turning_off_respond_shows_the_important_warning_and_needs_confirmation(contoso, admin):
    _set(contoso, admin, respond=True)
    with pytest.raises(ReducedAccessNeedsConfirmation) as exc:
        _set(contoso, admin, respond=False)
    assert exc.value.message == SKIP_PERMISSIONS_WARNING
    assert isinstance(exc.value, PermissionsError)
    assert access_levels_state(tenant=contoso).respond  # nothing changed
    state = _set(contoso, admin, respond=False, confirm_reduced_access=True)
    assert state.investigate and not state.respond
    grant = AccessGrant.objects.get(level="respond")
    assert grant.revoked_reason == RevokedReason.TURNED_OFF and grant.revoked_by == admin
    ev = AuditEvent.objects.get(action="permissions.level_revoked")
    assert ev.before["on"] is True and ev.after == {"level": "respond", "on": False, "revoked_reason": "turned_off"}


def test_turning_off_every_level_needs_confirmation(contoso, admin):
    _set(contoso, admin)
    with pytest.raises(ReducedAccessNeedsConfirmation):
        _set(contoso, admin, investigate=False)
    state = _set(contoso, admin, investigate=False, confirm_reduced_access=True)
    assert not state.any_level
    assert access_health(tenant=contoso).state == "none"


def test_turning_off_investigate_while_respond_stays_needs_no_confirmation(contoso, admin):
    _set(contoso, admin, respond=True)
    state = _set(contoso, admin, investigate=False, respond=True)
    assert state.respond and not state.investigate


def test_unchanged_submit_writes_nothing(contoso, admin):
    state = _set(contoso, admin)
    count = AuditEvent.objects.count()
    again = _set(contoso, admin)
    assert again.version == state.version and AuditEvent.objects.count() == count


def test_custom_end_date_is_validated(contoso, admin):
    with pytest.raises(InvalidEndDate):
        _set(contoso, admin, ends_at=datetime(2020, 1, 1, tzinfo=UTC))
    with time_machine.travel(T0, tick=False):
        with pytest.raises(InvalidEndDate):
            _set(contoso, admin, ends_at=T0 + timedelta(days=900))
        state = _set(contoso, admin, ends_at=T0 + timedelta(days=30))
    assert state.grants["investigate"].ends_at == T0 + timedelta(days=30)


# --- stale edits -----------------------------------------------------------------------


def test_a_stale_version_is_refused_with_the_current_state_and_nothing_overwritten(contoso, admin, secadmin):
    v1 = access_levels_state(tenant=contoso).version
    access_levels_set(tenant=contoso, acting_user=admin, investigate=True, respond=False, expected_version=v1)
    with pytest.raises(StaleEdit) as exc:
        access_levels_set(
            tenant=contoso,
            acting_user=secadmin,
            investigate=False,
            respond=False,
            expected_version=v1,
            confirm_reduced_access=True,
        )
    assert exc.value.current is not None and exc.value.current.investigate
    assert "Someone else changed" in exc.value.message
    assert access_levels_state(tenant=contoso).investigate
    with pytest.raises(StaleEdit):
        all_devices_set(tenant=contoso, acting_user=secadmin, enabled=False, expected_version=v1, confirm=True)
    with pytest.raises(StaleEdit):
        provider_access_remove(tenant=contoso, acting_user=secadmin, expected_version=v1)
    assert access_levels_state(tenant=contoso).all_devices
    assert provider_access_granted(tenant=contoso)


# --- all devices -----------------------------------------------------------------------


def test_all_devices_is_on_by_default_and_turning_it_off_needs_confirmation(contoso, admin):
    state = _set(contoso, admin)
    assert state.all_devices
    with pytest.raises(AllDevicesNeedsConfirmation) as exc:
        all_devices_set(tenant=contoso, acting_user=admin, enabled=False, expected_version=state.version)
    assert exc.value.message == ALL_DEVICES_WARNING
    off = all_devices_set(
        tenant=contoso, acting_user=admin, enabled=False, expected_version=state.version, confirm=True
    )
    assert not off.all_devices and off.version == state.version + 1
    ev = AuditEvent.objects.get(action="permissions.all_devices_changed")
    assert ev.before == {"all_devices": True} and ev.after == {"all_devices": False}
    on = all_devices_set(tenant=contoso, acting_user=admin, enabled=True, expected_version=off.version)
    assert on.all_devices  # turning it back on needs no confirmation


# --- removal and restoration -------------------------------------------------------------


def test_removal_ends_every_grant_and_restoration_brings_access_back(contoso, admin, secadmin):
    state = _set(contoso, admin, respond=True)
    removed = provider_access_remove(tenant=contoso, acting_user=admin, expected_version=state.version)
    assert removed.state == AccessState.REMOVED and not removed.investigate and not removed.respond
    assert not provider_access_granted(tenant=contoso)
    assert not AccessGrant.objects.filter(revoked_at__isnull=True).exists()
    assert set(AccessGrant.objects.values_list("revoked_reason", flat=True)) == {RevokedReason.ACCESS_REMOVED}
    health = access_health(tenant=contoso)
    assert health.state == "removed" and "removed by admin" in health.message
    ev = AuditEvent.objects.get(action="permissions.provider_access_removed")
    assert ev.before["state"] == "active" and ev.before["levels"]["respond"]["on"] is True
    assert ev.after["state"] == "removed" and ev.after["levels"]["respond"] == {"on": False}
    # While removed, the guide can't quietly grant levels again.
    with pytest.raises(ProviderAccessRemoved):
        _set(contoso, secadmin)
    # Any admin restores it, without asking the provider.
    restored = provider_access_restore(
        tenant=contoso, acting_user=secadmin, expected_version=removed.version, investigate=True, respond=False
    )
    assert restored.state == AccessState.ACTIVE and restored.investigate and not restored.respond
    assert ServiceProviderAccess.objects.get(tenant=contoso).granted_by == secadmin
    assert AuditEvent.objects.filter(action="permissions.provider_access_restored", actor=secadmin).count() == 1


def test_restoring_with_respond_needs_recent_sign_in(contoso, admin):
    state = _set(contoso, admin)
    removed = provider_access_remove(tenant=contoso, acting_user=admin, expected_version=state.version)
    with pytest.raises(ReauthenticationRequired):
        provider_access_restore(
            tenant=contoso, acting_user=admin, expected_version=removed.version, investigate=True, respond=True
        )
    assert not provider_access_granted(tenant=contoso)


# --- renewal --------------------------------------------------------------------------------


def test_renewal_extends_the_end_date_and_rearms_the_reminder(contoso, admin):
    with time_machine.travel(T0, tick=False):
        state = _set(contoso, admin, ends_at=T0 + timedelta(days=30))
    grant = AccessGrant.objects.get()
    with time_machine.travel(T0 + timedelta(days=24), tick=False):
        assert access_grants_send_reminders() == 1
        assert access_health(tenant=contoso).state == "expiring"
        v = access_levels_state(tenant=contoso).version
        with pytest.raises(InvalidEndDate):
            access_grant_renew(
                tenant=contoso,
                acting_user=admin,
                grant_id=grant.pk,
                expected_version=v,
                ends_at=T0 + timedelta(days=29),
            )
        new_end = T0 + timedelta(days=24 + 90)
        renewed = access_grant_renew(
            tenant=contoso, acting_user=admin, grant_id=grant.pk, expected_version=v, ends_at=new_end
        )
        assert renewed.grants["investigate"].ends_at == new_end
        assert access_health(tenant=contoso).state == "active"
    grant.refresh_from_db()
    assert grant.reminder_sent_at is None and grant.renewed_by == admin
    ev = AuditEvent.objects.get(action="permissions.level_renewed")
    assert ev.before["ends_at"] == (T0 + timedelta(days=30)).isoformat() and ev.after["ends_at"] == new_end.isoformat()
    # The new end date gets its own reminder, once.
    with time_machine.travel(new_end - timedelta(days=6), tick=False):
        assert access_grants_send_reminders() == 1
        assert access_grants_send_reminders() == 0
    assert OutboxMessage.objects.filter(kind="permissions.expiry_reminder").count() == 2
    assert state.version < renewed.version


def test_renewing_respond_needs_recent_sign_in_and_ended_grants_cannot_be_renewed(contoso, admin):
    state = _set(contoso, admin, respond=True)
    grant = AccessGrant.objects.get(level="respond")
    far = grant.ends_at + timedelta(days=30)
    with pytest.raises(ReauthenticationRequired):
        access_grant_renew(
            tenant=contoso, acting_user=admin, grant_id=grant.pk, expected_version=state.version, ends_at=far
        )
    state = _set(contoso, admin, respond=False, confirm_reduced_access=True)
    with pytest.raises(GrantNotLive):
        access_grant_renew(
            tenant=contoso,
            acting_user=admin,
            grant_id=grant.pk,
            expected_version=state.version,
            ends_at=far,
            recently_authenticated=True,
        )


# --- the sweeps, with a frozen clock -------------------------------------------------------


def test_the_sweep_revokes_a_grant_when_its_end_date_arrives_and_is_idempotent(contoso, admin):
    with time_machine.travel(T0, tick=False):
        _set(contoso, admin, respond=True, ends_at=T0 + timedelta(days=30))
    version = access_levels_state(tenant=contoso).version
    with time_machine.travel(T0 + timedelta(days=30) - timedelta(seconds=1), tick=False):
        assert access_grants_expire_due() == 0
        assert access_health(tenant=contoso).state == "expiring"
    with time_machine.travel(T0 + timedelta(days=30), tick=False):
        # Before the sweep runs the evaluator already treats the grant as ended.
        assert not access_levels_state(tenant=contoso).respond
        assert access_grants_expire_due() == 2
        assert access_grants_expire_due() == 0
    assert set(AccessGrant.objects.values_list("revoked_reason", flat=True)) == {RevokedReason.EXPIRED}
    events = AuditEvent.objects.filter(action="permissions.level_expired")
    assert events.count() == 2
    assert {e.actor_label for e in events} == {"system"} and all(e.actor is None for e in events)
    assert all(e.before["on"] and e.after["revoked_reason"] == "expired" for e in events)
    assert access_levels_state(tenant=contoso).version == version + 1  # open forms become stale
    health = access_health(tenant=contoso)
    assert health.state == "expired" and "expired on 31 Mar 2026" in health.message


def test_the_sweep_task_expires_and_reminds(contoso, admin):
    with time_machine.travel(T0, tick=False):
        _set(contoso, admin, ends_at=T0 + timedelta(days=10))
    with time_machine.travel(T0 + timedelta(days=4), tick=False):
        assert sweep_access_grants.delay().get() == {"expired": 0, "reminded": 1}
    with time_machine.travel(T0 + timedelta(days=11), tick=False):
        assert sweep_access_grants.delay().get() == {"expired": 1, "reminded": 0}


def test_the_reminder_goes_to_global_and_security_admins_once(contoso, admin, secadmin, operator, reader):
    with time_machine.travel(T0, tick=False):
        _set(contoso, admin, ends_at=T0 + timedelta(days=30))
    with time_machine.travel(T0 + timedelta(days=22), tick=False):  # 8 days left: not yet
        assert access_grants_send_reminders() == 0
    with time_machine.travel(T0 + timedelta(days=23), tick=False):  # 7 days left
        assert access_grants_send_reminders() == 1
    with time_machine.travel(T0 + timedelta(days=25), tick=False):
        assert access_grants_send_reminders() == 0
    message = OutboxMessage.objects.get(kind="permissions.expiry_reminder")
    assert message.to == ["admin@contoso.example", "secadmin@contoso.example"]
    assert "7 days" in message.subject
    assert "Investigate incidents and guide my responses" in message.text_body
    assert "/settings/defender-experts/permissions/" in message.html_body
    assert AuditEvent.objects.filter(action="permissions.expiry_reminder_queued", actor__isnull=True).count() == 1


def test_a_reminder_for_the_same_end_date_is_never_queued_twice_even_if_the_flag_is_lost(contoso, admin):
    with time_machine.travel(T0, tick=False):
        _set(contoso, admin, ends_at=T0 + timedelta(days=5))
        assert access_grants_send_reminders() == 1
        AccessGrant.objects.update(reminder_sent_at=None)  # simulate a lost flag
        access_grants_send_reminders()
    assert OutboxMessage.objects.filter(kind="permissions.expiry_reminder").count() == 1


def test_removed_access_gets_no_reminders(contoso, admin):
    with time_machine.travel(T0, tick=False):
        state = _set(contoso, admin, ends_at=T0 + timedelta(days=5))
        provider_access_remove(tenant=contoso, acting_user=admin, expected_version=state.version)
        assert access_grants_send_reminders() == 0


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_sweep_skips_rows_another_holds(contoso, admin):
    with time_machine.travel(T0, tick=False):
        _set(contoso, admin, ends_at=T0 + timedelta(days=3))
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                ServiceProviderAccess.objects.select_for_update().get(tenant=contoso)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(10)
    try:
        with time_machine.travel(T0 + timedelta(days=4), tick=False):
            # The other transaction holds the tenant's row: this sweep skips it instead of waiting.
            assert access_grants_expire_due() == 0
    finally:
        release.set()
        holder.join()
    with time_machine.travel(T0 + timedelta(days=4), tick=False):
        assert access_grants_expire_due() == 1
        assert access_grants_expire_due() == 0
    assert AuditEvent.objects.filter(action="permissions.level_expired").count() == 1


def test_the_expiring_state_starts_7_days_before_the_end(contoso, admin):
    """Healthy only while no chosen level ends within 7 days: the day the reminder email goes out."""
    with time_machine.travel(T0, tick=False):
        _set(contoso, admin, ends_at=T0 + timedelta(days=30))
    with time_machine.travel(T0 + timedelta(days=22), tick=False):
        assert access_health(tenant=contoso).state == "active"
    with time_machine.travel(T0 + timedelta(days=23), tick=False):
        health = access_health(tenant=contoso)
        assert health.state == "expiring" and health.days_left == 7 and "7 days left" in health.message


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_racing_end_each_grant_exactly_once():
    from tests import factories

    tenants = [factories.tenant(f"Race {i}") for i in range(12)]
    with time_machine.travel(T0, tick=False):
        for t in tenants:
            _set(t, factories.member(t), respond=True, ends_at=T0 + timedelta(days=2))
    results: list[int] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        try:
            barrier.wait(5)
            with time_machine.travel(T0 + timedelta(days=3), tick=False):
                results.append(access_grants_expire_due(batch=3))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(results) == 24
    assert AuditEvent.objects.filter(action="permissions.level_expired").count() == 24
    assert not AccessGrant.objects.filter(revoked_at__isnull=True).exists()


# --- review round: IP address, reminder content -------------------------------------------------


def test_services_stamp_the_requests_ip_on_their_audit_rows_and_the_sweep_none(contoso, admin):
    ip = "198.51.100.23"
    with time_machine.travel(T0, tick=False), request_context(ip_address=ip):
        state = _set(contoso, admin, respond=True, ends_at=T0 + timedelta(days=30))
        state = all_devices_set(
            tenant=contoso,
            acting_user=admin,
            enabled=False,
            expected_version=state.version,
            confirm=True,
        )
        grant = AccessGrant.objects.get(level="investigate")
        state = access_grant_renew(
            tenant=contoso,
            acting_user=admin,
            grant_id=grant.pk,
            expected_version=state.version,
            ends_at=T0 + timedelta(days=60),
        )
        state = provider_access_remove(tenant=contoso, acting_user=admin, expected_version=state.version)
        provider_access_restore(
            tenant=contoso,
            acting_user=admin,
            expected_version=state.version,
            investigate=True,
            respond=True,
            recently_authenticated=True,
            ends_at=T0 + timedelta(days=10),
        )
    by_user = AuditEvent.objects.filter(actor=admin)
    assert by_user.count() >= 9 and set(by_user.values_list("ip_address", flat=True)) == {ip}
    with time_machine.travel(T0 + timedelta(days=11), tick=False):
        assert access_grants_expire_due() == 2
    assert set(AuditEvent.objects.filter(action="permissions.level_expired").values_list("ip_address", flat=True)) == {
        None
    }


def test_levels_ending_together_get_one_reminder_listing_both(contoso, admin, secadmin):
    with time_machine.travel(T0, tick=False):
        _set(contoso, admin, respond=True, ends_at=datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 3, 25, 12, 0, tzinfo=UTC), tick=False):
        assert access_grants_send_reminders() == 2
        assert access_grants_send_reminders() == 0
    message = OutboxMessage.objects.get(kind="permissions.expiry_reminder")
    assert message.subject == "Defender Experts access ends in 7 days: 2 access levels"
    assert message.to == ["admin@contoso.example", "secadmin@contoso.example"]
    text = message.text_body
    assert "- Investigate incidents and guide my responses (Access level: Security Reader)" in text
    assert "- Respond directly to active threats (Access level: Security Operator)" in text
    assert text.count("Ends on 31 March 2026 at 23:59 UTC (7 days left).") == 2
    assert "they can only guide you through response actions" in text
    assert "Settings > Defender Experts > Permissions, under End dates" in text
    assert "/settings/defender-experts/permissions/#grants" in text
    assert "If you meant to let them end, you don't need to do anything." in text
    html = message.html_body
    assert "Review and renew access" in html and 'href="http' in html and "#grants" in html
    assert html.count("31 March 2026 at 23:59 UTC") == 2
    # Each grant's reminder is audited on its own (the system acted).
    assert AuditEvent.objects.filter(action="permissions.expiry_reminder_queued", actor__isnull=True).count() == 2


def test_a_single_levels_reminder_names_it_in_the_subject(contoso, admin):
    with time_machine.travel(T0, tick=False):
        _set(contoso, admin, ends_at=T0 + timedelta(days=3))
        assert access_grants_send_reminders() == 1
    message = OutboxMessage.objects.get(kind="permissions.expiry_reminder")
    assert message.subject == "Defender Experts access ends in 3 days: Investigate incidents and guide my responses"
    assert "lose the Security Reader role" in message.text_body
    assert "renew it in Settings" in message.text_body


# --- the Permissions page's one Save: levels and all devices --------------------------------


def test_one_save_carries_the_levels_and_all_devices_each_audited(contoso, admin):
    _set(contoso, admin)
    v = access_levels_state(tenant=contoso).version
    with pytest.raises(AllDevicesNeedsConfirmation):
        access_settings_save(
            tenant=contoso, acting_user=admin, investigate=True, respond=True, all_devices=False, expected_version=v,
            recently_authenticated=True,
        )  # fmt: skip
    # Refused before anything was written: Respond wasn't granted either.
    state = access_levels_state(tenant=contoso)
    assert (state.respond, state.all_devices, state.version) == (False, True, v)
    state = access_settings_save(
        tenant=contoso, acting_user=admin, investigate=True, respond=True, all_devices=False, expected_version=v,
        confirm=True, recently_authenticated=True,
    )  # fmt: skip
    assert state.respond and not state.all_devices
    assert AuditEvent.objects.filter(tenant=contoso, action="permissions.all_devices_changed", actor=admin).count() == 1
    granted = AuditEvent.objects.filter(tenant=contoso, action="permissions.level_granted", after__level="respond")
    assert granted.exists()
    # A form without the switch (``None``) leaves it as it is; turning it back on needs no confirmation.
    state = access_settings_save(
        tenant=contoso, acting_user=admin, investigate=True, respond=True, all_devices=None,
        expected_version=state.version,
    )  # fmt: skip
    assert not state.all_devices
    state = access_settings_save(
        tenant=contoso, acting_user=admin, investigate=True, respond=True, all_devices=True,
        expected_version=state.version,
    )  # fmt: skip
    assert state.all_devices


def test_a_stale_save_is_a_conflict_unless_everything_it_asks_for_holds(contoso, admin, secadmin):
    _set(contoso, admin)
    v = access_levels_state(tenant=contoso).version
    all_devices_set(tenant=contoso, acting_user=secadmin, enabled=False, expected_version=v, confirm=True)
    # Same levels, all devices on: someone else turned it off meanwhile.
    with pytest.raises(StaleEdit):
        access_settings_save(
            tenant=contoso, acting_user=admin, investigate=True, respond=False, all_devices=True, expected_version=v
        )
    assert not access_levels_state(tenant=contoso).all_devices
    # Asking for exactly what holds now is a double submit: nothing written.
    before = access_levels_state(tenant=contoso).version
    state = access_settings_save(
        tenant=contoso, acting_user=admin, investigate=True, respond=False, all_devices=False, expected_version=v
    )
    assert state.version == before
