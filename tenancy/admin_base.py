"""Base classes for every ModelAdmin of the portal.

The admin must never break tenant isolation nor bypass the audit trail:

* a foreign key to a tenant is read-only on every change form (set once, on
  creation, never moved: a moved row would take another tenant's data with it);
* nothing is deleted from the admin (deletions are service calls where they exist);
* an admin is read-only unless it says which service writes its changes
  (``ServiceAdmin``): the service validates, audits in the tenant's log and
  commits both together, exactly as the portal's own pages do.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from tenancy.models import Tenant


def tenant_fields(model: type[models.Model]) -> list[str]:
    """Names of ``model``'s foreign keys (or one-to-ones) to a tenant."""
    return [
        f.name
        for f in model._meta.get_fields()
        if getattr(f, "many_to_one", False) or getattr(f, "one_to_one", False)
        if getattr(f, "concrete", False) and f.related_model is Tenant
    ]


class OperatorAdmin(admin.ModelAdmin):
    """Tenant foreign keys are read-only once the row exists; no deletions."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += [name for name in tenant_fields(self.model) if name not in fields]
        return fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(OperatorAdmin):
    """For looking only: the rows change through the portal's services."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
