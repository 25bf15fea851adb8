"""Benchmark: one sweep over 10,000 due tenants (claim + enqueue), on PostgreSQL and Redis.

    DATABASE_URL=postgres://root@127.0.0.1:5432/portal_readiness_bench \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/10 .venv/bin/python bench/readiness_sweep.py

Creates 10,000 tenants once (reused later). The first sweep also creates
their readiness states in bulk. Each round then makes every tenant due and
times the sweep's phases: creating missing states, pulling in changed
tenants, claiming (``SELECT ... FOR UPDATE SKIP LOCKED`` + one UPDATE) and
enqueueing one refresh message per tenant to the Redis broker. No worker
consumes them: the broker's queue is purged after each round, so nothing
else is affected. Options: ``--tenants N`` (default 10000), ``--repeat N`` (default 5).
"""

from __future__ import annotations

import argparse
import statistics
import time

from _setup import bootstrap


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bootstrap(
        "portal_readiness_bench",
        settings="defender_portal.settings",
        redis=True,
        refusal="These benchmarks measure PostgreSQL: set DATABASE_URL=postgres://...",
    )

    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from defender_portal.celery import app
    from readiness.models import ReadinessState
    from readiness.services import (
        readiness_claim_due,
        readiness_create_missing_states,
        readiness_enqueue,
        readiness_pull_in_changed,
    )
    from tenancy.models import ProviderOrganization, Tenant

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        raise SystemExit("Set CELERY_BROKER_URL=redis://... to measure enqueueing to Redis.")
    provider, _ = ProviderOrganization.objects.get_or_create(domain="experts.example", defaults={"name": "Experts"})
    existing = Tenant.objects.filter(primary_domain__startswith="bench-sweep-").count()
    if existing < args.tenants:
        Tenant.objects.bulk_create(
            [
                Tenant(name=f"Sweep {i}", primary_domain=f"bench-sweep-{i}.example", provider=provider)
                for i in range(existing, args.tenants)
            ],
            batch_size=2000,
        )
    t0 = time.perf_counter()
    created = readiness_create_missing_states()
    print(f"created {created:,} missing states in bulk in {(time.perf_counter() - t0) * 1000:.0f} ms")

    def purge() -> None:
        with app.connection_for_write() as conn:
            app.control.purge(connection=conn)

    purge()
    rows = []
    for _ in range(args.repeat):
        ReadinessState.objects.update(next_refresh_at=timezone.now(), lease_expires_at=None)
        now = timezone.now() + timedelta(seconds=1)
        t0 = time.perf_counter()
        readiness_create_missing_states(now=now)
        t1 = time.perf_counter()
        readiness_pull_in_changed(now=now)
        t2 = time.perf_counter()
        claimed = readiness_claim_due(now=now)
        t3 = time.perf_counter()
        sent = readiness_enqueue(claimed)
        t4 = time.perf_counter()
        purge()
        rows.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, len(claimed), sent))
    claimed_n = rows[-1][5]
    med = [statistics.median(r[i] for r in rows) for i in range(5)]
    print(f"{claimed_n:,} tenants due per sweep; medians over {args.repeat} sweeps:")
    print(
        f"  create missing states {med[0] * 1000:.0f} ms, pull in changed {med[1] * 1000:.0f} ms, "
        f"claim {med[2] * 1000:.0f} ms, enqueue {med[3] * 1000:.0f} ms, total {med[4] * 1000:.0f} ms"
    )
    print(
        f"  per tenant: claim {med[2] / claimed_n * 1e6:.0f} µs, enqueue {med[3] / claimed_n * 1e6:.0f} µs, "
        f"whole sweep {med[4] / claimed_n * 1e6:.0f} µs"
    )
    ReadinessState.objects.filter(tenant__primary_domain__startswith="bench-sweep-").update(
        next_refresh_at=timezone.now() + timedelta(days=1), lease_expires_at=None
    )


if __name__ == "__main__":
    main()
