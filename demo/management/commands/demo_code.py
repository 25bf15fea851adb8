"""Print the demo users' current authenticator app code (the second sign-in step)."""

from __future__ import annotations

import time
from typing import Any

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the demo users' current authenticator app code (DEMO_TOTP_SECRET)."

    def handle(self, *args: Any, **options: Any) -> None:
        now = int(time.time())
        code = format_hotp_value(hotp_value(settings.DEMO_TOTP_SECRET, now // 30))
        self.stdout.write(f"{code}  (valid for about {30 - now % 30 + 30} more seconds; each code works once)")
