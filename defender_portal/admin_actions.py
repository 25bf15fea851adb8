"""Admins for other apps' models that operators may act on, through the portal's services.

``lock_down_third_party_admins`` registers these instead of a read-only copy.
"""

from __future__ import annotations

from django.contrib import admin

THIRD_PARTY_ADMINS: dict[str, type[admin.ModelAdmin]] = {}
