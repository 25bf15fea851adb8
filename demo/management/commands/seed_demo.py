"""``python manage.py seed_demo [--seed 42] [--devices 1500] [--reset]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.seed import DEFAULT_DEVICES, demo_data_present, describe, seed_demo


class Command(BaseCommand):
    help = (
        "Create the demo provider, tenants (Contoso, Fabrikam), users and emulated environments. "
        "Idempotent and deterministic: running it again with the same seed adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--devices",
            type=int,
            default=DEFAULT_DEVICES,
            help=f"Number of Contoso devices (default {DEFAULT_DEVICES:,}); a different number rebuilds them.",
        )
        parser.add_argument(
            "--reset", action="store_true", help="Wipe the demo tenants' environments and seed them again."
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing if the demo tenants already exist (for start-up scripts).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        devices = options["devices"]
        if devices < 0 or devices > 2_000_000:
            raise CommandError("--devices must be between 0 and 2,000,000.")
        if options["if_missing"] and not options["reset"] and demo_data_present():
            self.stdout.write("Demo data is already present; nothing to do.")
            return
        summary = seed_demo(seed=options["seed"], devices=devices, reset=options["reset"])
        self.stdout.write(describe(summary))
