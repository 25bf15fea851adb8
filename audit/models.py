"""An append-only audit trail of every change made in the portal."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def for_tenant(self, tenant: Any) -> AuditEventQuerySet:
        return self.filter(tenant=tenant)


class AuditEvent(models.Model):
    """One change: who did what, when, to which tenant, with before and after.

    Rows are only ever inserted, by ``audit.services.audit_record`` inside the
    same transaction as the change they describe.
    """

    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    # The acting user; NULL with actor_label "system" for sweeps and tasks.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A snapshot of who acted, kept even if the user is later deleted.
    actor_label = models.CharField(max_length=254)
    action = models.CharField(max_length=80, db_index=True)
    summary = models.CharField(max_length=500)
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # The request that made the change (core.context), to tie rows written together; "" for the system.
    request_id = models.CharField(max_length=32, blank=True, default="")
    # The browser or client that made the request (sign-ins, experts' sessions, any change).
    user_agent = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="audit_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label}: {self.summary}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The trail is evidence: an existing row is never rewritten.
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("Audit events are append-only.")
