"""Changes to notification contacts. Each one locks the tenant row (so concurrent
changes to the same tenant's contacts queue up instead of racing), writes its
audit row and queues its emails in the same transaction."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from audit.selectors import events_since
from audit.services import audit_record
from contacts.exceptions import (
    CannotReceiveEmail,
    ContactNotFound,
    DuplicateContact,
    LastIncidentContact,
    RateLimited,
    RemovingLastIncidentContact,
    StaleContact,
)
from contacts.models import (
    NOTIFICATION_TYPE_HELP,
    DirectoryState,
    EntryKind,
    NotificationContact,
    NotificationType,
    directory_entry_state,
)
from contacts.phones import phone_display, phone_normalize
from contacts.selectors import contact_removal_check
from core.errors import Invalid
from environment.models import DirectoryGroup, DirectoryUser
from outbox.models import MessageStatus, OutboxMessage
from outbox.services import outbox_enqueue, outbox_retry_now
from tenancy.models import Tenant, User

# "Send test notification": at most this many per contact in the window.
TEST_NOTIFICATION_LIMIT = 3
TEST_NOTIFICATION_WINDOW = timedelta(minutes=10)


def _lock_tenant(tenant: Tenant) -> Tenant:
    return Tenant.objects.select_for_update().get(pk=tenant.pk)


def _actor(acting_user: User | None) -> str:
    if acting_user is None:
        return "the system"
    return f"{acting_user.display_name} ({acting_user.email})" if acting_user.display_name else acting_user.email


def _type_label(notification_type: str) -> str:
    return NotificationType(notification_type).label


def type_with_article(notification_type: str) -> str:
    """ "an incident contact" / "a service review contact"."""
    label = _type_label(notification_type).lower()
    return f"an {label}" if notification_type == NotificationType.INCIDENT else f"a {label}"


def contact_added_message(contact: NotificationContact) -> str:
    """What the admin is told after adding a contact. The email is queued in the
    outbox (sent right after), so it says it's on its way, not sent."""
    return (
        f"{contact.display_name} was added as {type_with_article(contact.notification_type)}. "
        f"An email letting them know is on its way to {contact.email}."
    )


def _purpose(notification_type: str) -> str:
    """The seed's words: "chosen as a contact for incident notification or service review purposes"."""
    return "incident notification" if notification_type == NotificationType.INCIDENT else "service review"


def _email_context(*, tenant: Tenant, contact: NotificationContact, acting_user: User | None) -> dict[str, Any]:
    from django.conf import settings

    return {
        "contact": contact,
        "contact_name": contact.display_name,
        "type_label": _type_label(contact.notification_type),
        "type_help": NOTIFICATION_TYPE_HELP[contact.notification_type],
        "type_with_article": type_with_article(contact.notification_type),
        "purpose": _purpose(contact.notification_type),
        "contact_email": contact.current_email,
        "is_incident": contact.notification_type == NotificationType.INCIDENT,
        "is_team": contact.is_team,
        "tenant_name": tenant.name,
        "actor": _actor(acting_user),
        "contacts_url": settings.PORTAL_BASE_URL + reverse("contacts:index"),
    }


def _snapshot(contact: NotificationContact) -> dict[str, Any]:
    return {
        "notification_type": contact.notification_type,
        "kind": contact.kind,
        "display_name": contact.display_name,
        "email": contact.email,
        "phone": contact.phone,
        "position": contact.position,
    }


def _refuse_unless_it_can_receive(name: str, *, kind: str, enabled: bool, mail: str, mail_enabled: bool) -> None:
    state = directory_entry_state(kind=kind, exists=True, enabled=enabled, mail=mail, mail_enabled=mail_enabled)
    if state != DirectoryState.OK:
        raise CannotReceiveEmail(f"{name} can't be added: {state.label.lower()}.")


@transaction.atomic
def contact_add(
    *,
    tenant: Tenant,
    acting_user: User | None,
    notification_type: str,
    directory_user_id: int | str | None = None,
    directory_group_id: int | str | None = None,
    phone: str = "",
) -> NotificationContact:
    """Make a directory user or group a contact for one notification type.

    The chosen contact is emailed (through the outbox, in this transaction):
    a group's email goes to the group's own address.
    """
    try:
        ntype = NotificationType(notification_type)
    except ValueError:
        choose = "Choose a notification type: Incident contact or Service review contact."
        raise Invalid(fields={"notification_type": [choose]}) from None
    if (directory_user_id in (None, "")) == (directory_group_id in (None, "")):
        raise Invalid(fields={"entry": ["Choose one person or team from the search results."]})
    # Any contact may have a phone number, whatever its notification type.
    phone_e164 = phone_normalize(phone)
    locked = _lock_tenant(tenant)

    user: DirectoryUser | None = None
    group: DirectoryGroup | None = None
    try:
        if directory_user_id not in (None, ""):
            user = DirectoryUser.objects.get(tenant=locked, pk=int(directory_user_id))
        else:
            group = DirectoryGroup.objects.get(tenant=locked, pk=int(directory_group_id or ""))
    except (DirectoryUser.DoesNotExist, DirectoryGroup.DoesNotExist, ValueError, TypeError):
        raise ContactNotFound("That person or team isn't in your directory any more. Search again.") from None

    if user is not None:
        _refuse_unless_it_can_receive(
            user.display_name, kind=EntryKind.USER, enabled=user.enabled, mail=user.mail, mail_enabled=True
        )
        name, email, kind = user.display_name, user.mail, EntryKind.USER
        existing = NotificationContact.objects.active().filter(
            tenant=locked, notification_type=ntype, directory_user=user
        )
    else:
        assert group is not None
        _refuse_unless_it_can_receive(
            group.display_name, kind=EntryKind.GROUP, enabled=True, mail=group.mail, mail_enabled=group.mail_enabled
        )
        name, email, kind = group.display_name, group.mail, EntryKind.GROUP
        existing = NotificationContact.objects.active().filter(
            tenant=locked, notification_type=ntype, directory_group=group
        )
    duplicate_message = f"{name} is already {type_with_article(ntype)}."
    if existing.exists():
        raise DuplicateContact(duplicate_message)

    last = (
        NotificationContact.objects.active()
        .filter(tenant=locked, notification_type=ntype)
        .aggregate(m=Max("position"))["m"]
    )
    now = timezone.now()
    try:
        with transaction.atomic():
            contact = NotificationContact.objects.create(
                tenant=locked,
                notification_type=ntype,
                kind=kind,
                directory_user=user,
                directory_group=group,
                display_name=name,
                email=email,
                phone=phone_e164,
                position=(last or 0) + 1,
                added_by=acting_user,
                added_by_label=acting_user.email if acting_user else "system",
                created_at=now,
                updated_at=now,
            )
    except IntegrityError:
        # Only reachable if the tenant lock was bypassed; the constraint still holds.
        raise DuplicateContact(duplicate_message)

    message = outbox_enqueue(
        tenant=locked,
        kind="contacts.added",
        to=[email],
        subject=f"You've been chosen as a contact for {_purpose(ntype)} purposes — {locked.name}",
        template="contacts/emails/added",
        context=_email_context(tenant=locked, contact=contact, acting_user=acting_user),
        dedupe_key=f"contacts.added:{contact.pk}",
    )
    contact.welcome_message = message
    contact.save(update_fields=["welcome_message"])
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="contacts.added",
        summary=f"Added {name} ({'team' if group else 'person'}, {email}) as {ntype.label.lower()}"
        + (f" with phone {phone_display(phone_e164)}" if phone_e164 else ""),
        target=contact,
        after=_snapshot(contact),
    )
    return contact


def _locked_active(
    *, tenant: Tenant, contact: NotificationContact, expected_version: int | None
) -> NotificationContact:
    current = (
        NotificationContact.objects.select_for_update(of=("self",))
        .select_related("directory_user", "directory_group")
        .get(pk=contact.pk, tenant=tenant)
    )
    if current.removed_at is not None:
        who = f" by {current.removed_by_label}" if current.removed_by_label else ""
        raise StaleContact(
            f"{current.display_name} was already removed as {_type_label(current.notification_type).lower()}{who}."
        )
    if expected_version is not None and current.version != int(expected_version):
        raise StaleContact(
            f"{current.display_name} was changed by someone else since you loaded this page. "
            "The current details are shown; check them and try again."
        )
    return current


@transaction.atomic
def contact_remove(
    *,
    tenant: Tenant,
    acting_user: User | None,
    contact: NotificationContact,
    expected_version: int,
    confirm_last: bool = False,
) -> NotificationContact:
    """Stop notifying a contact for one type; they get a short email saying so.

    The last incident contact who can receive notifications can't be removed
    during Monitoring and Active (``LastIncidentContact``); before that, its
    removal needs ``confirm_last`` (``RemovingLastIncidentContact`` names the
    consequence). Judged under the tenant lock, so two admins removing the
    last two reachable contacts at once can't both succeed.

    Sent again after it worked (a double submit) it changes nothing and says nothing.
    """
    locked = _lock_tenant(tenant)
    already = NotificationContact.objects.filter(pk=contact.pk, tenant=locked, removed_at__isnull=False).first()
    if already is not None and already.version == int(expected_version) + 1:
        return already  # this very form removed it a moment ago
    current = _locked_active(tenant=locked, contact=contact, expected_version=expected_version)
    check = contact_removal_check(tenant=locked, contact=current)
    if check.refusal:
        raise LastIncidentContact(check.refusal, add_url=check.add_url)
    if check.consequence and not confirm_last:
        raise RemovingLastIncidentContact(check.consequence)
    before = _snapshot(current)
    now = timezone.now()
    current.removed_at = now
    current.removed_by_label = acting_user.email if acting_user else "system"
    current.updated_at = now
    current.version += 1
    current.save(update_fields=["removed_at", "removed_by_label", "updated_at", "version"])
    if current.can_receive:
        outbox_enqueue(
            tenant=locked,
            kind="contacts.removed",
            to=[current.current_email],
            subject=f"You're no longer a contact for {_purpose(current.notification_type)} purposes — {locked.name}",
            template="contacts/emails/removed",
            context=_email_context(tenant=locked, contact=current, acting_user=acting_user),
            dedupe_key=f"contacts.removed:{current.pk}",
        )
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="contacts.removed",
        summary=f"Removed {current.display_name} as {_type_label(current.notification_type).lower()}"
        + (", the last incident contact who could receive notifications" if check.consequence else ""),
        target=current,
        before=before,
    )
    return current


def _ordinal(n: int) -> str:
    return "primary" if n == 1 else f"backup {n - 1}"


@transaction.atomic
def contact_move(
    *,
    tenant: Tenant,
    acting_user: User | None,
    contact: NotificationContact,
    direction: str,
    expected_version: int,
    expected_neighbour_id: int | str | None,
) -> NotificationContact:
    """Swap a contact with the one above ("up") or below ("down") in the call order.

    The form says which neighbour the admin saw; if the list changed since
    (someone reordered, added or removed), the move is refused as stale rather
    than swapping with a different contact than the one shown.
    """
    if direction not in ("up", "down"):
        raise Invalid("Choose to move the contact up or down.")
    locked = _lock_tenant(tenant)
    current = _locked_active(tenant=locked, contact=contact, expected_version=expected_version)
    ordered = list(
        NotificationContact.objects.active()
        .select_for_update()
        .filter(tenant=locked, notification_type=current.notification_type)
        .order_by("position", "id")
    )
    index = next(i for i, c in enumerate(ordered) if c.pk == current.pk)
    other_index = index - 1 if direction == "up" else index + 1
    if other_index < 0 or other_index >= len(ordered):
        raise StaleContact(
            f"{current.display_name} is already {'first' if direction == 'up' else 'last'} in the call order."
        )
    neighbour = ordered[other_index]
    try:
        expected_neighbour = int(expected_neighbour_id) if expected_neighbour_id not in (None, "") else None
    except (TypeError, ValueError):
        expected_neighbour = None
    if expected_neighbour != neighbour.pk:
        raise StaleContact("The call order changed since you loaded this page. The current order is shown; try again.")
    before_order = [c.display_name for c in ordered]
    ordered[index], ordered[other_index] = ordered[other_index], ordered[index]
    now = timezone.now()
    changed = []
    for i, c in enumerate(ordered, start=1):
        if c.position != i or c.pk in (current.pk, neighbour.pk):
            c.position = i
            c.version += 1
            c.updated_at = now
            changed.append(c)
    NotificationContact.objects.bulk_update(changed, ["position", "version", "updated_at"])
    moved = next(c for c in ordered if c.pk == current.pk)
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="contacts.reordered",
        summary=f"Moved {moved.display_name} {direction} in the {_type_label(moved.notification_type).lower()} "
        f"call order (now {_ordinal(moved.position)})",
        target=moved,
        before={"order": before_order},
        after={"order": [c.display_name for c in ordered]},
    )
    return moved


@transaction.atomic
def contact_set_phone(
    *, tenant: Tenant, acting_user: User | None, contact: NotificationContact, phone: str, expected_version: int
) -> NotificationContact:
    """Set or clear the number Defender Experts can call for matters that require immediate attention (any contact)."""
    phone_e164 = phone_normalize(phone)
    locked = _lock_tenant(tenant)
    stale_but_same = NotificationContact.objects.filter(
        pk=contact.pk, tenant=locked, removed_at__isnull=True, phone=phone_e164
    ).exclude(version=expected_version)
    if stale_but_same.exists():
        # A stale form asking for the number the contact already has: a double submit, nothing to change.
        return _locked_active(tenant=locked, contact=contact, expected_version=None)
    current = _locked_active(tenant=locked, contact=contact, expected_version=expected_version)
    if current.phone == phone_e164:
        return current
    before = current.phone
    current.phone = phone_e164
    current.version += 1
    current.updated_at = timezone.now()
    current.save(update_fields=["phone", "version", "updated_at"])
    if phone_e164:
        summary = f"Set the phone number of {current.display_name} to {phone_display(phone_e164)}"
    else:
        summary = f"Removed the phone number of {current.display_name}"
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="contacts.phone_changed",
        summary=summary,
        target=current,
        before={"phone": before},
        after={"phone": phone_e164},
    )
    return current


def _rate_limit_message(contact: NotificationContact, *, oldest: datetime, now: datetime) -> str:
    """Say how many were sent, the limit, and exactly when the next one is allowed.

    A slot frees up when the oldest test in the window leaves it, so that is
    the earliest moment another test can go (rounded up to the minute shown).
    """
    window = int(TEST_NOTIFICATION_WINDOW.total_seconds() // 60)
    allowed_at = oldest + TEST_NOTIFICATION_WINDOW
    wait = max(1, math.ceil((allowed_at - now).total_seconds() / 60))
    at = (allowed_at + timedelta(seconds=59)).replace(second=0, microsecond=0)
    return (
        f"{contact.display_name} has already been sent {TEST_NOTIFICATION_LIMIT} test notifications in the last "
        f"{window} minutes, the most we allow for one contact. You can send another in {wait} "
        f"minute{'s' if wait != 1 else ''}, at {timezone.localtime(at, UTC):%H:%M} UTC."
    )


@transaction.atomic
def contact_send_test(*, tenant: Tenant, acting_user: User | None, contact: NotificationContact) -> OutboxMessage:
    """Send one test notification, at most ``TEST_NOTIFICATION_LIMIT`` per contact per window.

    The count comes from the audit trail under the tenant lock, so two
    concurrent clicks can't both squeeze under the limit.
    """
    locked = _lock_tenant(tenant)
    current = _locked_active(tenant=locked, contact=contact, expected_version=None)
    if not current.can_receive:
        raise CannotReceiveEmail(
            f"{current.display_name} can't receive a test notification: {current.directory_state.label.lower()}."
        )
    now = timezone.now()
    recent = events_since(
        tenant=locked, action="contacts.test_sent", target=current, since=now - TEST_NOTIFICATION_WINDOW
    )
    if recent.count >= TEST_NOTIFICATION_LIMIT:
        # Some were counted, so the oldest has a time.
        raise RateLimited(_rate_limit_message(current, oldest=recent.oldest or now, now=now))
    message = outbox_enqueue(
        tenant=locked,
        kind="contacts.test",
        to=[current.current_email],
        subject=f"Test notification from Microsoft Defender Experts — {locked.name}",
        template="contacts/emails/test",
        context=_email_context(tenant=locked, contact=current, acting_user=acting_user),
    )
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="contacts.test_sent",
        summary=f"Sent a test notification to {current.display_name} ({current.current_email})",
        target=current,
        after={"outbox_message_id": message.pk},
    )
    return message


@transaction.atomic
def contact_retry_email(*, tenant: Tenant, acting_user: User | None, contact: NotificationContact) -> OutboxMessage:
    """Send the chosen-as-contact email again after the outbox gave up on it.

    The same outbox row is retried (not a new email), so the contact can never
    receive it twice; only a failed message can be retried.
    """
    locked = _lock_tenant(tenant)
    current = _locked_active(tenant=locked, contact=contact, expected_version=None)
    message = (
        OutboxMessage.objects.select_for_update().filter(pk=current.welcome_message_id).first()
        if current.welcome_message_id
        else None
    )
    if message is None or message.status != MessageStatus.FAILED:
        raise Invalid(f"The email to {current.display_name} hasn't failed, so there's nothing to retry.")
    if not current.can_receive:
        raise CannotReceiveEmail(
            f"{current.display_name} can't receive email: {current.directory_state.label.lower()}."
        )
    outbox_retry_now(message=message)
    audit_record(
        tenant=locked,
        acting_user=acting_user,
        action="contacts.email_retried",
        summary=f"Retried the notification-contact email to {current.display_name} ({', '.join(message.to)})",
        target=current,
        after={"outbox_message_id": message.pk},
    )
    return message
