"""Notification contacts: the services, directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from contacts.exceptions import (
    CannotReceiveEmail,
    ContactNotFound,
    DuplicateContact,
    InvalidPhone,
    LastIncidentContact,
    RateLimited,
    RemovingLastIncidentContact,
    StaleContact,
)
from contacts.models import DirectoryState, NotificationContact, NotificationType
from contacts.selectors import contacts_for_tenant, incident_recipient_emails, service_review_recipient_emails
from contacts.services import (
    TEST_NOTIFICATION_LIMIT,
    contact_add,
    contact_move,
    contact_remove,
    contact_send_test,
    contact_set_phone,
    phone_normalize,
)
from core.errors import Invalid
from outbox.models import MessageStatus, OutboxMessage
from outbox.tasks import deliver_message
from tenancy.models import ServicePhase
from tests import factories

pytestmark = pytest.mark.django_db

INCIDENT = NotificationType.INCIDENT
REVIEW = NotificationType.SERVICE_REVIEW


@pytest.fixture
def alice(contoso):
    return factories.directory_user(contoso, "Alice Martin", mail="alice@contoso.example")


@pytest.fixture
def bob(contoso):
    return factories.directory_user(contoso, "Bob Stone", mail="bob@contoso.example")


@pytest.fixture
def soc(contoso, alice, bob):
    return factories.directory_group(contoso, "SOC Team", members=[alice, bob], mail="soc@contoso.example")


def _add(tenant, actor, entry, ntype=INCIDENT, phone=""):
    kwargs = (
        {"directory_user_id": entry.pk} if hasattr(entry, "user_principal_name") else {"directory_group_id": entry.pk}
    )
    return contact_add(tenant=tenant, acting_user=actor, notification_type=ntype, phone=phone, **kwargs)


# --- Adding ---------------------------------------------------------------------------


def test_add_user_queues_the_chosen_email_and_audits_in_the_same_transaction(contoso, admin, alice):
    contact = _add(contoso, admin, alice)
    assert contact.display_name == "Alice Martin"
    assert contact.email == "alice@contoso.example"
    assert contact.position == 1
    assert contact.added_by == admin
    message = contact.welcome_message
    assert message is not None
    assert message.to == ["alice@contoso.example"]
    assert message.kind == "contacts.added"
    assert message.status == MessageStatus.PENDING
    # Which type, which tenant, by whom.
    assert "incident notification" in message.subject
    assert "Contoso" in message.text_body
    assert admin.email in message.text_body
    assert "Incident contact" in message.text_body
    event = AuditEvent.objects.get(action="contacts.added")
    assert event.actor == admin
    assert event.tenant == contoso
    assert event.target_id == str(contact.pk)
    assert event.after["notification_type"] == "incident"


def test_service_review_email_says_service_review(contoso, admin, alice):
    contact = _add(contoso, admin, alice, REVIEW)
    assert "service review" in contact.welcome_message.subject
    assert "Service review contact" in contact.welcome_message.text_body


@pytest.mark.parametrize(("ntype", "purpose"), [(INCIDENT, "incident notification"), (REVIEW, "service review")])
def test_chosen_email_uses_the_seed_words_for_tenant_type_and_chooser(contoso, admin, alice, ntype, purpose):
    # Seed: "...receive an email notifying them that they have been chosen as a
    # contact for incident notification or service review purposes."
    message = _add(contoso, admin, alice, ntype).welcome_message
    sentence = f"You have been chosen as a contact for {purpose} purposes for Contoso"
    assert message.subject == f"You've been chosen as a contact for {purpose} purposes — Contoso"
    assert sentence in message.text_body
    assert f"Chosen by: {admin.display_name} ({admin.email})" in message.text_body
    html = " ".join(message.html_body.split())
    assert f"chosen as a contact for <strong>{purpose}</strong> purposes for <strong>Contoso</strong>" in html
    # They were chosen by the admin, not by Defender Experts.
    assert "by Microsoft Defender Experts" not in message.text_body
    assert ("available at all times" in message.text_body) is (ntype == INCIDENT)


def test_team_email_names_the_team_and_its_address(contoso, admin, soc):
    message = _add(contoso, admin, soc, REVIEW).welcome_message
    assert "Hello SOC Team,\n\nYour team has been chosen as a contact for service review purposes" in message.text_body
    assert "Notifications go to the team's address, soc@contoso.example" in message.text_body


def test_group_email_goes_to_the_group_address(contoso, admin, soc):
    contact = _add(contoso, admin, soc)
    assert contact.kind == "group"
    assert contact.welcome_message.to == ["soc@contoso.example"]
    assert "Your team has been chosen" in contact.welcome_message.text_body


def test_nothing_is_kept_when_the_add_fails_midway(contoso, admin, alice, monkeypatch):
    import contacts.services as services

    def boom(**kwargs):
        raise RuntimeError("template broke")

    monkeypatch.setattr(services, "outbox_enqueue", boom)
    with pytest.raises(RuntimeError):
        _add(contoso, admin, alice)
    assert not NotificationContact.objects.exists()
    assert not AuditEvent.objects.filter(action="contacts.added").exists()


def test_same_person_can_hold_both_types_but_not_the_same_type_twice(contoso, admin, alice):
    _add(contoso, admin, alice, INCIDENT)
    _add(contoso, admin, alice, REVIEW)
    with pytest.raises(DuplicateContact) as exc:
        _add(contoso, admin, alice, INCIDENT)
    assert exc.value.message == "Alice Martin is already an incident contact."
    with pytest.raises(DuplicateContact, match="already a service review contact"):
        _add(contoso, admin, alice, REVIEW)
    assert NotificationContact.objects.count() == 2
    assert OutboxMessage.objects.filter(kind="contacts.added").count() == 2


def test_group_duplicate_is_refused(contoso, admin, soc):
    _add(contoso, admin, soc)
    with pytest.raises(DuplicateContact, match="SOC Team is already an incident contact"):
        _add(contoso, admin, soc)


def test_removed_contact_can_be_added_again(contoso, admin, alice):
    contact = _add(contoso, admin, alice)
    contact_remove(
        tenant=contoso, acting_user=admin, contact=contact, expected_version=contact.version, confirm_last=True
    )
    again = _add(contoso, admin, alice)
    assert again.pk != contact.pk


def test_group_that_is_not_mail_enabled_is_refused(contoso, admin):
    group = factories.directory_group(contoso, "Security Readers", mail="", mail_enabled=False, security_enabled=True)
    with pytest.raises(CannotReceiveEmail, match="this group can't receive email"):
        _add(contoso, admin, group)
    assert not NotificationContact.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_disabled_user_is_refused(contoso, admin):
    carol = factories.directory_user(contoso, "Carol Gone", enabled=False)
    with pytest.raises(CannotReceiveEmail, match="this user is disabled"):
        _add(contoso, admin, carol)


def test_user_without_mailbox_is_refused(contoso, admin):
    dave = factories.directory_user(contoso, "Dave NoMail", mail="")
    with pytest.raises(CannotReceiveEmail, match="no email address"):
        _add(contoso, admin, dave)


def test_another_tenants_directory_entry_is_not_found(contoso, fabrikam, admin):
    foreign = factories.directory_user(fabrikam, "Fiona Fabrikam")
    with pytest.raises(ContactNotFound):
        _add(contoso, admin, foreign)
    with pytest.raises(ContactNotFound):
        contact_add(tenant=contoso, acting_user=admin, notification_type=INCIDENT, directory_user_id="abc")


def test_exactly_one_entry_and_a_known_type_are_required(contoso, admin, alice, soc):
    with pytest.raises(Invalid, match="Choose one person or team"):
        contact_add(tenant=contoso, acting_user=admin, notification_type=INCIDENT)
    with pytest.raises(Invalid, match="Choose one person or team"):
        contact_add(
            tenant=contoso, acting_user=admin, notification_type=INCIDENT,
            directory_user_id=alice.pk, directory_group_id=soc.pk,
        )  # fmt: skip
    with pytest.raises(Invalid, match="Choose a notification type"):
        contact_add(tenant=contoso, acting_user=admin, notification_type="pager", directory_user_id=alice.pk)


def test_positions_follow_the_order_of_adding(contoso, admin, alice, bob, soc):
    a, b, s = _add(contoso, admin, alice), _add(contoso, admin, bob), _add(contoso, admin, soc)
    assert [a.position, b.position, s.position] == [1, 2, 3]
    # Each type keeps its own call order.
    assert _add(contoso, admin, alice, REVIEW).position == 1


# --- Phone numbers -------------------------------------------------------------------


def test_phone_international_is_the_readable_form(contoso, admin, alice):
    contact = _add(contoso, admin, alice, phone="+33142685300")
    assert (contact.phone, contact.phone_international) == ("+33142685300", "+33 1 42 68 53 00")
    contact.phone = ""
    assert contact.phone_international == ""


@pytest.mark.parametrize(
    "raw, expected",
    [("+1 425 555 0100", "+14255550100"), ("+44 20 7946 0958", "+442079460958"), ("+33 1 42 68 53 00", "+33142685300"),
     ("", "")],
)  # fmt: skip
def test_phone_is_normalised_to_e164(raw, expected):
    assert phone_normalize(raw) == expected


@pytest.mark.parametrize("raw", ["425 555 0100", "+1 555", "+999 1234567", "call me", "+1 425 555 0100 ext"])
def test_phone_must_be_a_valid_international_number(raw):
    with pytest.raises(InvalidPhone):
        phone_normalize(raw)


def test_phone_given_when_adding_an_incident_contact(contoso, admin, alice):
    contact = _add(contoso, admin, alice, phone="+1 425 555 0100")
    assert contact.phone == "+14255550100"


def test_any_contact_may_have_a_phone_number(contoso, admin, alice, bob):
    review = _add(contoso, admin, alice, REVIEW, phone="+44 20 7946 0958")
    assert review.phone == "+442079460958"
    other = _add(contoso, admin, bob, REVIEW)
    updated = contact_set_phone(
        tenant=contoso, acting_user=admin, contact=other, phone="+1 (425) 555-0142", expected_version=1
    )
    assert (updated.phone, updated.phone_international) == ("+14255550142", "+1 425 555 0142")
    event = AuditEvent.objects.get(action="contacts.phone_changed")
    assert event.summary == "Set the phone number of Bob Stone to +1 425 555 0142"
    # Still only valid international numbers.
    with pytest.raises(InvalidPhone):
        contact_set_phone(tenant=contoso, acting_user=admin, contact=updated, phone="425 555 0142", expected_version=2)


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("+14255550142", "+1 425 555 0142"),
        ("+442079460958", "+44 20 7946 0958"),
        ("+33142685300", "+33 1 42 68 53 00"),
        ("+4930901820", "+49 30 901820"),
        ("", ""),
    ],
)
def test_phone_numbers_are_shown_one_way(e164, shown):
    from core.phones import phone_display

    assert phone_display(e164) == shown
    assert "-" not in phone_display(e164)


def test_phone_change_is_audited_and_versioned(contoso, secadmin, alice):
    contact = _add(contoso, secadmin, alice)
    updated = contact_set_phone(
        tenant=contoso, acting_user=secadmin, contact=contact, phone="+44 20 7946 0958", expected_version=1
    )
    assert updated.phone == "+442079460958"
    assert updated.version == 2
    event = AuditEvent.objects.get(action="contacts.phone_changed")
    assert event.before == {"phone": ""}
    assert event.after == {"phone": "+442079460958"}
    assert event.actor == secadmin
    cleared = contact_set_phone(tenant=contoso, acting_user=secadmin, contact=contact, phone="", expected_version=2)
    assert cleared.phone == ""
    assert AuditEvent.objects.filter(action="contacts.phone_changed").count() == 2


def test_stale_phone_change_is_refused(contoso, admin, alice):
    contact = _add(contoso, admin, alice)
    contact_set_phone(tenant=contoso, acting_user=admin, contact=contact, phone="+14255550100", expected_version=1)
    with pytest.raises(StaleContact, match="changed by someone else"):
        contact_set_phone(tenant=contoso, acting_user=admin, contact=contact, phone="+14255550199", expected_version=1)
    contact.refresh_from_db()
    assert contact.phone == "+14255550100"


# --- Removing ---------------------------------------------------------------------------


def test_remove_emails_the_contact_and_audits(contoso, admin, alice):
    contact = _add(contoso, admin, alice)
    contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=1, confirm_last=True)
    contact.refresh_from_db()
    assert contact.removed_at is not None
    assert list(contacts_for_tenant(tenant=contoso)) == []
    message = OutboxMessage.objects.get(kind="contacts.removed")
    assert message.to == ["alice@contoso.example"]
    assert "You are no longer a contact for incident notification purposes for Contoso" in message.text_body
    event = AuditEvent.objects.get(action="contacts.removed")
    assert event.before["display_name"] == "Alice Martin"
    assert event.actor == admin


def test_stale_remove_gets_a_conflict_not_a_wrong_result(contoso, admin, secadmin, alice):
    contact = _add(contoso, admin, alice)
    contact_set_phone(tenant=contoso, acting_user=secadmin, contact=contact, phone="+14255550100", expected_version=1)
    with pytest.raises(StaleContact):
        contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=1)
    contact.refresh_from_db()
    assert contact.removed_at is None
    contact_remove(tenant=contoso, acting_user=secadmin, contact=contact, expected_version=2, confirm_last=True)
    # Removing it again from the same version changes nothing: a double submit, not a conflict.
    contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=2, confirm_last=True)
    assert OutboxMessage.objects.filter(kind="contacts.removed").count() == 1
    # From an older version, after another change, it is a conflict.
    with pytest.raises(StaleContact, match="already removed .*by secadmin@contoso.example"):
        contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=1)


def test_removing_a_deleted_entry_sends_no_email(contoso, admin, alice):
    contact = _add(contoso, admin, alice)
    alice.delete()
    contact.refresh_from_db()
    contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=1)
    assert not OutboxMessage.objects.filter(kind="contacts.removed").exists()
    assert AuditEvent.objects.filter(action="contacts.removed").count() == 1


# --- Reordering ------------------------------------------------------------------------


# --- The last incident contact who can receive notifications -----------------------------------


def _phase(tenant, phase):
    tenant.service_phase = phase
    tenant.save(update_fields=["service_phase"])


@pytest.mark.parametrize("phase", [ServicePhase.MONITORING, ServicePhase.ACTIVE])
def test_last_reachable_incident_contact_stays_during_monitoring_and_active(contoso, admin, alice, bob, phase):
    contact = _add(contoso, admin, alice)
    _add(contoso, admin, bob, REVIEW)  # a service review contact doesn't count
    _phase(contoso, phase)
    # Not even a confirmed removal: the experts must always have someone to notify.
    with pytest.raises(LastIncidentContact) as refused:
        contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=1, confirm_last=True)
    assert "Alice Martin can't be removed" in refused.value.message
    assert f"in the {ServicePhase(phase).label} phase" in refused.value.message
    assert "Add another incident contact first" in refused.value.message
    assert refused.value.extra["add_url"] == reverse("contacts:index") + "?notification_type=incident#add-heading"
    contact.refresh_from_db()
    assert contact.removed_at is None and contact.version == 1
    assert not AuditEvent.objects.filter(action="contacts.removed").exists()
    assert not OutboxMessage.objects.filter(kind="contacts.removed").exists()
    # With another reachable incident contact, it is an ordinary removal.
    _add(contoso, admin, bob)
    contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=1)
    contact.refresh_from_db()
    assert contact.removed_at is not None


@pytest.mark.parametrize("phase", [ServicePhase.INVITED, ServicePhase.SETTING_UP, ServicePhase.PREPARING])
def test_before_monitoring_removing_the_last_reachable_incident_contact_is_confirmed(contoso, admin, alice, phase):
    contact = _add(contoso, admin, alice)
    _phase(contoso, phase)
    with pytest.raises(RemovingLastIncidentContact) as asked:
        contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=1)
    assert "Alice Martin is your last incident contact who can receive notifications" in asked.value.message
    assert "our experts will have nobody to notify" in asked.value.message
    contact.refresh_from_db()
    assert contact.removed_at is None
    contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=1, confirm_last=True)
    contact.refresh_from_db()
    assert contact.removed_at is not None
    event = AuditEvent.objects.get(action="contacts.removed")
    assert event.summary.endswith("the last incident contact who could receive notifications")


def test_only_contacts_who_can_receive_notifications_count(contoso, admin, alice, bob):
    """The rule asks directory_entry_state (through can_receive): a disabled user, a deleted
    entry or a group that can't receive email is nobody to notify."""
    reachable = _add(contoso, admin, alice)
    disabled = _add(contoso, admin, bob)
    group = factories.directory_group(contoso, "Mailless Team", mail="team@contoso.example", mail_enabled=True)
    team = _add(contoso, admin, group)
    bob.enabled = False
    bob.save(update_fields=["enabled"])
    group.mail_enabled = False
    group.save(update_fields=["mail_enabled"])
    _phase(contoso, ServicePhase.MONITORING)
    with pytest.raises(LastIncidentContact):
        contact_remove(tenant=contoso, acting_user=admin, contact=reachable, expected_version=1)
    # Removing the contacts nobody can reach changes nobody's reach: no question asked.
    contact_remove(tenant=contoso, acting_user=admin, contact=disabled, expected_version=1)
    contact_remove(tenant=contoso, acting_user=admin, contact=team, expected_version=1)
    assert NotificationContact.objects.active().filter(tenant=contoso).count() == 1


def test_two_admins_cannot_remove_the_last_two_reachable_contacts_between_them(contoso, admin, secadmin, alice, bob):
    a, b = _add(contoso, admin, alice), _add(contoso, admin, bob)
    _phase(contoso, ServicePhase.ACTIVE)
    # Each saw two contacts; the second removal is judged against the list as it is then.
    contact_remove(tenant=contoso, acting_user=admin, contact=a, expected_version=1)
    with pytest.raises(LastIncidentContact):
        contact_remove(tenant=contoso, acting_user=secadmin, contact=b, expected_version=1)


def _order(tenant, ntype=INCIDENT):
    return [c.display_name for c in contacts_for_tenant(tenant=tenant) if c.notification_type == ntype]


def test_move_up_and_down_swaps_with_the_neighbour_shown(contoso, admin, alice, bob, soc):
    a, b, s = _add(contoso, admin, alice), _add(contoso, admin, bob), _add(contoso, admin, soc)
    moved = contact_move(
        tenant=contoso, acting_user=admin, contact=s, direction="up", expected_version=1, expected_neighbour_id=b.pk
    )
    assert moved.position == 2
    assert _order(contoso) == ["Alice Martin", "SOC Team", "Bob Stone"]
    a.refresh_from_db()
    contact_move(
        tenant=contoso, acting_user=admin, contact=a, direction="down", expected_version=a.version,
        expected_neighbour_id=s.pk,
    )  # fmt: skip
    assert _order(contoso) == ["SOC Team", "Alice Martin", "Bob Stone"]
    events = AuditEvent.objects.filter(action="contacts.reordered").order_by("id")
    assert events.count() == 2
    assert events[0].before == {"order": ["Alice Martin", "Bob Stone", "SOC Team"]}
    assert events[0].after == {"order": ["Alice Martin", "SOC Team", "Bob Stone"]}
    assert "now backup 1" in events[0].summary
    assert "now backup 1" in events[1].summary


def test_stale_reorder_is_refused_when_the_list_changed(contoso, admin, secadmin, alice, bob, soc):
    a, b, s = _add(contoso, admin, alice), _add(contoso, admin, bob), _add(contoso, admin, soc)
    # Both admins see [Alice, Bob, SOC]. The second admin moves SOC to the top.
    contact_move(
        tenant=contoso, acting_user=secadmin, contact=s, direction="up", expected_version=1, expected_neighbour_id=b.pk
    )
    # The first admin, on the stale page, moves Bob up (expecting Alice above him);
    # now SOC is above Bob, so the move must be refused rather than swap Bob with SOC.
    b.refresh_from_db()
    with pytest.raises(StaleContact, match="call order changed"):
        contact_move(
            tenant=contoso, acting_user=admin, contact=b, direction="up", expected_version=b.version,
            expected_neighbour_id=a.pk,
        )  # fmt: skip
    # A stale version of the moved contact itself is refused too.
    with pytest.raises(StaleContact):
        contact_move(
            tenant=contoso, acting_user=admin, contact=s, direction="up", expected_version=1, expected_neighbour_id=a.pk
        )
    assert _order(contoso) == ["Alice Martin", "SOC Team", "Bob Stone"]
    assert AuditEvent.objects.filter(action="contacts.reordered").count() == 1


def test_first_cannot_move_up(contoso, admin, alice):
    a = _add(contoso, admin, alice)
    with pytest.raises(StaleContact, match="already first"):
        contact_move(
            tenant=contoso, acting_user=admin, contact=a, direction="up", expected_version=1, expected_neighbour_id=""
        )
    with pytest.raises(Invalid):
        contact_move(
            tenant=contoso,
            acting_user=admin,
            contact=a,
            direction="sideways",
            expected_version=1,
            expected_neighbour_id="",
        )


# --- Directory changes after adding ----------------------------------------------------------


def test_deleted_directory_entry_stays_listed_and_flagged(contoso, admin, alice, soc):
    contact = _add(contoso, admin, alice, REVIEW)
    team = _add(contoso, admin, soc, REVIEW)
    alice.delete()
    soc.delete()
    listed = {c.pk: c for c in contacts_for_tenant(tenant=contoso)}
    assert set(listed) == {contact.pk, team.pk}
    assert listed[contact.pk].directory_state == DirectoryState.DELETED
    assert listed[contact.pk].directory_state.label == "No longer in your directory"
    assert listed[contact.pk].display_name == "Alice Martin"
    assert listed[team.pk].directory_state == DirectoryState.DELETED
    assert service_review_recipient_emails(tenant=contoso) == []


def test_disabled_user_and_group_losing_mail_are_flagged(contoso, admin, alice, bob, soc):
    _add(contoso, admin, alice, REVIEW)
    _add(contoso, admin, bob, REVIEW)
    _add(contoso, admin, soc, REVIEW)
    assert service_review_recipient_emails(tenant=contoso) == [
        "alice@contoso.example", "bob@contoso.example", "soc@contoso.example",
    ]  # fmt: skip
    alice.enabled = False
    alice.save()
    soc.mail_enabled = False
    soc.save()
    states = {c.display_name: c.directory_state for c in contacts_for_tenant(tenant=contoso)}
    assert states == {
        "Alice Martin": DirectoryState.DISABLED,
        "Bob Stone": DirectoryState.OK,
        "SOC Team": DirectoryState.NOT_MAIL_ENABLED,
    }
    assert service_review_recipient_emails(tenant=contoso) == ["bob@contoso.example"]


def test_a_user_who_lost_their_mailbox_is_flagged_and_not_emailed(contoso, admin, alice, bob):
    # Adding refused a user without a mailbox, but a contact whose user lost it
    # afterwards still counted as reachable (mail went to the old address).
    _add(contoso, admin, alice)
    _add(contoso, admin, bob)
    alice.mail = ""
    alice.save()
    states = {c.display_name: c.directory_state for c in contacts_for_tenant(tenant=contoso)}
    assert states == {"Alice Martin": DirectoryState.NO_MAILBOX, "Bob Stone": DirectoryState.OK}
    assert incident_recipient_emails(tenant=contoso) == ["bob@contoso.example"]


@pytest.mark.parametrize("kind", ["user", "group"])
@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("mail", ["entry@contoso.example", ""])
@pytest.mark.parametrize("mail_enabled", [True, False])
def test_adding_searching_and_notifying_agree_on_who_can_receive_email(
    contoso, admin, kind, enabled, mail, mail_enabled
):
    # One rule: what the search says can't be added is what adding refuses,
    # and what an existing contact in that state is flagged with.
    from contacts.selectors import directory_search

    if kind == "user":
        entry = factories.directory_user(contoso, "Entry Person", mail=mail, enabled=enabled)
        ok_entry = factories.directory_user(contoso, "Other Person", mail="ok@contoso.example")
    else:
        entry = factories.directory_group(contoso, "Entry Team", mail=mail, mail_enabled=mail_enabled)
        ok_entry = factories.directory_group(contoso, "Other Team", mail="ok@contoso.example")
    (result,) = directory_search(tenant=contoso, query=f"entry {'person' if kind == 'user' else 'team'}")
    try:
        _add(contoso, admin, entry)
        refused = ""
    except CannotReceiveEmail as exc:
        refused = str(exc)
    assert result.can_add == (refused == "")
    if refused:
        assert result.refusal.lower() in refused
    # The same entry in the same state, as an existing contact: made reachable, added, then changed back.
    if refused:
        contact = _add(contoso, admin, ok_entry)
        type(ok_entry).objects.filter(pk=ok_entry.pk).update(
            mail=mail, **({"enabled": enabled} if kind == "user" else {"mail_enabled": mail_enabled})
        )
        (listed,) = [c for c in contacts_for_tenant(tenant=contoso) if c.pk == contact.pk]
        assert not listed.can_receive and listed.directory_state.label == result.refusal


def test_recipient_emails_are_tenant_scoped_and_in_call_order(contoso, fabrikam, admin, outsider, alice, bob):
    _add(contoso, admin, bob)
    _add(contoso, admin, alice)
    other = factories.directory_user(fabrikam, "Olga Other", mail="olga@fabrikam.example")
    _add(fabrikam, outsider, other, REVIEW)
    assert incident_recipient_emails(tenant=contoso) == ["bob@contoso.example", "alice@contoso.example"]
    assert service_review_recipient_emails(tenant=contoso) == []
    assert service_review_recipient_emails(tenant=fabrikam) == ["olga@fabrikam.example"]


def test_team_preview_flags_disabled_members(contoso, admin, alice, bob, soc):
    bob.enabled = False
    bob.save()
    _add(contoso, admin, soc)
    (team,) = contacts_for_tenant(tenant=contoso)
    assert team.team_member_count == 2
    assert team.team_disabled_count == 1
    assert [(m.user.display_name, m.user.enabled) for m in team.directory_group.preview] == [
        ("Alice Martin", True), ("Bob Stone", False),
    ]  # fmt: skip


# --- Emails: delivered once, however often the task runs --------------------------------------


def test_chosen_email_is_sent_once_under_a_retried_task(contoso, admin, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        contact = _add(contoso, admin, alice)
    # The on-commit kick ran the (eager) delivery task once.
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@contoso.example"]
    # Redelivery by the broker, the sweep or a retry changes nothing.
    assert deliver_message.apply(args=[contact.welcome_message_id]).get() == "skipped"
    assert deliver_message.apply(args=[contact.welcome_message_id]).get() == "skipped"
    assert len(mail.outbox) == 1
    contact.refresh_from_db()
    assert contact.welcome_message.status == MessageStatus.SENT
    assert contact.welcome_message.sent_at is not None


def test_failed_email_is_retried_with_backoff_and_shows_on_the_contact(contoso, admin, alice, settings, monkeypatch):
    contact = _add(contoso, admin, alice)
    from django.core.mail.backends.locmem import EmailBackend

    def refuse(self, messages):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    assert deliver_message.apply(args=[contact.welcome_message_id]).get() == "error"
    message = OutboxMessage.objects.get(pk=contact.welcome_message_id)
    assert message.status == MessageStatus.PENDING
    assert message.next_attempt_at > timezone.now()
    # A retry before the backoff has elapsed does nothing.
    assert deliver_message.apply(args=[contact.welcome_message_id]).get() == "skipped"
    settings.OUTBOX_MAX_ATTEMPTS = 2
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert deliver_message.apply(args=[contact.welcome_message_id]).get() == "error"
    (listed,) = contacts_for_tenant(tenant=contoso)
    assert listed.welcome_message.status == MessageStatus.FAILED


# --- Test notifications -----------------------------------------------------------------


def test_test_notification_is_rate_limited_per_contact(contoso, admin, alice, bob):
    a, b = _add(contoso, admin, alice), _add(contoso, admin, bob)
    start = datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC)
    for minute in range(TEST_NOTIFICATION_LIMIT):
        with time_machine.travel(start + timedelta(minutes=minute), tick=False):
            message = contact_send_test(tenant=contoso, acting_user=admin, contact=a)
        assert message.to == ["alice@contoso.example"]
    # The refusal says what the limit is and exactly when the next test is allowed:
    # when the first test (10:00:30) leaves the 10-minute window, i.e. 10:10:30, shown as 10:11.
    with time_machine.travel(start + timedelta(minutes=3), tick=False):
        with pytest.raises(RateLimited) as refused:
            contact_send_test(tenant=contoso, acting_user=admin, contact=a)
    assert refused.value.message == (
        "Alice Martin has already been sent 3 test notifications in the last 10 minutes, the most we allow for "
        "one contact. You can send another in 7 minutes, at 10:11 UTC."
    )
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        with pytest.raises(RateLimited, match="You can send another in 1 minute, at 10:11 UTC"):
            contact_send_test(tenant=contoso, acting_user=admin, contact=a)
    with time_machine.travel(start + timedelta(minutes=10, seconds=1), tick=False):
        contact_send_test(tenant=contoso, acting_user=admin, contact=a)
    with time_machine.travel(start + timedelta(minutes=10, seconds=2), tick=False):
        with pytest.raises(RateLimited, match="You can send another in 1 minute, at 10:12 UTC"):
            contact_send_test(tenant=contoso, acting_user=admin, contact=a)
    # Another contact has its own allowance.
    contact_send_test(tenant=contoso, acting_user=admin, contact=b)
    assert OutboxMessage.objects.filter(kind="contacts.test").count() == TEST_NOTIFICATION_LIMIT + 2
    assert AuditEvent.objects.filter(action="contacts.test_sent").count() == TEST_NOTIFICATION_LIMIT + 2


def test_test_notification_refused_for_flagged_contact(contoso, admin, alice):
    a = _add(contoso, admin, alice)
    alice.enabled = False
    alice.save()
    with pytest.raises(CannotReceiveEmail):
        contact_send_test(tenant=contoso, acting_user=admin, contact=a)


def test_database_refuses_a_duplicate_even_without_the_service(contoso, admin, alice):
    from django.db import IntegrityError, transaction

    contact = _add(contoso, admin, alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationContact.objects.create(
            tenant=contoso, notification_type=INCIDENT, kind="user", directory_user=alice,
            display_name="x", email="x@example.test", position=9,
        )  # fmt: skip
    # A removed row doesn't block, and a deleted entry (NULL) never collides.
    contact_remove(tenant=contoso, acting_user=admin, contact=contact, expected_version=1, confirm_last=True)
    _add(contoso, admin, alice)


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_of_the_same_person_make_one_contact(contoso, admin, alice):
    import threading

    from django.db import connection

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        try:
            barrier.wait()
            _add(contoso, admin, alice)
            outcomes.append("added")
        except DuplicateContact:
            outcomes.append("duplicate")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["added", "duplicate"]
    assert NotificationContact.objects.count() == 1
    assert OutboxMessage.objects.filter(kind="contacts.added").count() == 1
