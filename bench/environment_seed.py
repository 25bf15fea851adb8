"""Benchmark: seed_demo at 1,500 and 100,000 devices, and bulk environment changes at that scale.

Runs against its own scratch database (``TEST_DATABASE_NAME``, default
``portal_bench_environment``, created and migrated on first use and kept for
later runs) on the server of DATABASE_URL: never the demo data, nor the test
suite's database:

    DATABASE_URL=postgres://root@127.0.0.1:5432/portal_bench \
        .venv/bin/python bench/environment_seed.py [--devices 100000]

Target: 100,000 devices load in well under a minute on PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from _setup import bootstrap


def timed(label: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = fn()
    print(f"{label:<58} {time.perf_counter() - started:8.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    # Its own database on the server of DATABASE_URL, whatever database that URL names: seed_demo resets it.
    database = os.environ.get("TEST_DATABASE_NAME") or "portal_bench_environment"
    bootstrap(database, settings="tests.settings", on_server_of_url=True)
    from django.db import connection

    print(f"database: {connection.settings_dict['NAME']}")

    from demo.seed import seed_demo
    from environment import selectors, services
    from tenancy.models import Tenant

    big = args.devices
    timed("seed_demo --reset, 1,500 devices", lambda: seed_demo(seed=args.seed, devices=1500, reset=True))
    timed("seed_demo again (idempotent, nothing to add)", lambda: seed_demo(seed=args.seed, devices=1500, reset=False))
    summary = timed(
        f"seed_demo --devices {big:,} (rescale from 1,500)",
        lambda: seed_demo(seed=args.seed, devices=big, reset=False),
    )
    print("    " + ", ".join(f"{k} {v:.2f}s" for k, v in summary.timings.items()))
    timed(
        f"seed_demo --reset --devices {big:,} (from scratch)",
        lambda: seed_demo(seed=args.seed, devices=big, reset=True),
    )

    contoso = Tenant.objects.get(primary_domain="contoso.example")
    counts = timed(f"device_counts, {big:,} devices (one GROUP BY)", lambda: selectors.device_counts(tenant=contoso))
    print(f"    {counts.total:,} devices, {counts.onboarded:,} onboarded, {counts.protected:,} protected")
    n = timed(
        "devices_onboard: every device not yet onboarded",
        lambda: services.devices_onboard(tenant=contoso, acting_user=None, all_devices=True),
    )
    print(f"    onboarded {n:,}")
    n = timed(
        "devices_set_antivirus_mode: all passive -> active",
        lambda: services.devices_set_antivirus_mode(
            tenant=contoso, acting_user=None, mode="active", from_mode="passive"
        ),
    )
    print(f"    switched {n:,}")
    timed("seed_demo --reset, back to 1,500 devices", lambda: seed_demo(seed=args.seed, devices=1500, reset=True))


if __name__ == "__main__":
    main()
