from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from defender_portal.health import beat_is_alive


class Command(BaseCommand):
    help = "Exit non-zero when a portal process is unhealthy (used by docker-compose health checks)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", choices=["db", "beat"])

    def handle(self, *args: Any, target: str, **options: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if target == "beat" and not beat_is_alive():
            raise CommandError("Celery beat has not sent a periodic task in the last 5 minutes.")
        self.stdout.write("ok")
