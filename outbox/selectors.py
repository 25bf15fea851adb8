from __future__ import annotations

from django.db.models import QuerySet

from outbox.models import MessageStatus, OutboxMessage
from tenancy.models import ProviderOrganization


def outbox_messages_for_provider(
    *, organization: ProviderOrganization, status: str | None = None
) -> QuerySet[OutboxMessage]:
    """Messages of the provider's tenants, plus tenant-less system mail."""
    qs = OutboxMessage.objects.select_related("tenant").filter(tenant__provider=organization)
    if status in MessageStatus.values:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")
