"""Notification contacts: who Defender Experts notifies, and in which order they call.

A contact points at a directory user or group of the tenant. The pointer is
``SET_NULL`` and the name and address are snapshotted, so a contact whose
directory entry disappears stays listed (flagged) instead of silently vanishing
from the list of people who get notified.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class NotificationType(models.TextChoices):
    INCIDENT = "incident", "Incident contact"
    SERVICE_REVIEW = "service_review", "Service review contact"


# What each notification type is for, in the seed document's words.
NOTIFICATION_TYPE_HELP: dict[str, str] = {
    NotificationType.INCIDENT: (
        "Notified for managed response actions or any communication that requires a prompt response."
    ),
    NotificationType.SERVICE_REVIEW: "Engaged for ongoing security briefings done by our service delivery team.",
}


class EntryKind(models.TextChoices):
    USER = "user", "Person"
    GROUP = "group", "Team"


class DirectoryState(models.TextChoices):
    """Whether a contact can still receive notifications, judged from the directory now."""

    OK = "ok", "In your directory"
    DELETED = "deleted", "No longer in your directory"
    DISABLED = "disabled", "This user is disabled"
    NO_MAILBOX = "no_mailbox", "This user has no email address"
    NOT_MAIL_ENABLED = "not_mail_enabled", "This group can't receive email"


def directory_entry_state(*, kind: str, exists: bool, enabled: bool, mail: str, mail_enabled: bool) -> DirectoryState:
    """Can this directory entry receive email? The one place that decides it.

    Adding a contact, the search's "can't be added" reasons, the contacts
    page's flags and who notifications go to all ask this. A user needs to be
    enabled and to have a mailbox; a group needs to be mail-enabled with an
    address. ``exists`` is False once the entry left the directory.
    """
    if not exists:
        return DirectoryState.DELETED
    if kind == EntryKind.USER:
        if not enabled:
            return DirectoryState.DISABLED
        return DirectoryState.OK if mail else DirectoryState.NO_MAILBOX
    return DirectoryState.OK if mail_enabled and mail else DirectoryState.NOT_MAIL_ENABLED


class NotificationContactQuerySet(models.QuerySet["NotificationContact"]):
    def active(self) -> NotificationContactQuerySet:
        return self.filter(removed_at__isnull=True)


class NotificationContact(models.Model):
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="notification_contacts")
    notification_type = models.CharField(max_length=20, choices=NotificationType.choices)
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    directory_user = models.ForeignKey(
        "environment.DirectoryUser", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    directory_group = models.ForeignKey(
        "environment.DirectoryGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Snapshots taken when the contact was added, shown if the entry is deleted.
    display_name = models.CharField(max_length=256)
    email = models.EmailField(max_length=254)
    # E.164 ("+14255550100"), for matters that require immediate attention; any contact may have one.
    phone = models.CharField(max_length=20, blank=True)
    # Call order within (tenant, type): lowest is the primary, then backups.
    position = models.PositiveIntegerField(default=0)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_by_label = models.CharField(max_length=254, blank=True)
    # Optimistic concurrency: every change bumps it; a form posting an older
    # value gets a conflict message instead of overwriting someone's change.
    version = models.PositiveIntegerField(default=1)
    welcome_message = models.ForeignKey(
        "outbox.OutboxMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Removal is soft so that a stale "remove" of an already-removed contact
    # gets a clear conflict message rather than a 404, and history survives.
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by_label = models.CharField(max_length=254, blank=True)

    objects = NotificationContactQuerySet.as_manager()

    class Meta:
        ordering = ["notification_type", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "notification_type", "directory_user"],
                condition=Q(removed_at__isnull=True, directory_user__isnull=False),
                name="contact_unique_user_per_type",
            ),
            models.UniqueConstraint(
                fields=["tenant", "notification_type", "directory_group"],
                condition=Q(removed_at__isnull=True, directory_group__isnull=False),
                name="contact_unique_group_per_type",
            ),
            models.CheckConstraint(
                condition=~Q(directory_user__isnull=False, directory_group__isnull=False),
                name="contact_one_entry",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "notification_type", "position"], name="contact_call_order")]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.get_notification_type_display()})"

    @property
    def is_team(self) -> bool:
        return self.kind == EntryKind.GROUP

    @property
    def directory_state(self) -> DirectoryState:
        """Judged from the (select_related) directory row, so no extra query."""
        if self.kind == EntryKind.USER:
            user = self.directory_user
            return directory_entry_state(
                kind=EntryKind.USER,
                exists=user is not None,
                enabled=user is not None and user.enabled,
                mail=user.mail if user is not None else "",
                mail_enabled=True,
            )
        group = self.directory_group
        return directory_entry_state(
            kind=EntryKind.GROUP,
            exists=group is not None,
            enabled=True,
            mail=group.mail if group is not None else "",
            mail_enabled=group is not None and group.mail_enabled,
        )

    @property
    def can_receive(self) -> bool:
        return self.directory_state == DirectoryState.OK

    @property
    def phone_international(self) -> str:
        """The phone number as people read it ("+33 1 42 68 53 00"); ``phone`` is E.164."""
        from contacts.phones import phone_display

        return phone_display(self.phone)

    @property
    def current_email(self) -> str:
        """The address notifications go to now (the directory's, else the snapshot)."""
        if self.kind == EntryKind.USER and self.directory_user is not None:
            return self.directory_user.mail or self.email
        if self.kind == EntryKind.GROUP and self.directory_group is not None:
            return self.directory_group.mail or self.email
        return self.email
