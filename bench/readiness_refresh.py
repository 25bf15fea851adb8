"""Benchmark: refreshing one tenant with 100,000 devices on PostgreSQL (target: under 2 s).

    DATABASE_URL=postgres://root@127.0.0.1:5432/portal_readiness_bench .venv/bin/python bench/readiness_refresh.py

The tenant (100,000 devices, 20 domain controllers, 4,000 identities, licences,
settings) is created once with bulk inserts and reused. Each round makes it
due, claims it and times ``readiness_refresh`` — the whole refresh: the
aggregate reads of the environment, the statuses, the figures, the snapshot,
the run record and the regression review, in one transaction. It also times
``environment_facts`` alone (the reads) and prints the statements one refresh
runs. Options: ``--devices N`` (default 100000), ``--repeat N`` (default 10).
"""

from __future__ import annotations

import argparse
import statistics
import time

from _setup import bootstrap, percentile


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    bootstrap(
        "portal_readiness_bench",
        settings="defender_portal.settings",
        redis=True,
        refusal="These benchmarks measure PostgreSQL: set DATABASE_URL=postgres://...",
    )

    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from demo.environments import seed_environment
    from environment.models import Device
    from readiness.models import ReadinessState
    from readiness.rules import environment_facts
    from readiness.services import readiness_claim_due, readiness_refresh, readiness_state_for
    from tenancy.models import ProviderOrganization, Tenant

    provider, _ = ProviderOrganization.objects.get_or_create(domain="experts.example", defaults={"name": "Experts"})
    domain = f"bench-refresh-{args.devices}.example"
    tenant, created = Tenant.objects.get_or_create(
        primary_domain=domain, defaults={"name": f"Bench {args.devices:,} devices", "provider": provider}
    )
    if created or Device.objects.filter(tenant=tenant).count() != args.devices:
        started = time.perf_counter()
        Device.objects.filter(tenant=tenant).delete()
        seed_environment(tenant, devices=args.devices, domain_controllers=20, sensors=15, identities_per_dc=200)
        with connection.cursor() as cur:
            cur.execute("ANALYZE environment_device; ANALYZE environment_directoryuser")
        print(f"seeded {args.devices:,} devices in {time.perf_counter() - started:.1f} s")
    readiness_state_for(tenant=tenant)

    facts_times, refresh_times = [], []
    statements = 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        environment_facts(tenant=tenant)
        facts_times.append(time.perf_counter() - t0)
        ReadinessState.objects.filter(tenant=tenant).update(next_refresh_at=timezone.now(), lease_expires_at=None)
        claimed = [
            c for c in readiness_claim_due(now=timezone.now() + timedelta(seconds=1)) if c.tenant_id == tenant.pk
        ]
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            outcome = readiness_refresh(tenant_id=tenant.pk, generation=claimed[0].generation)
            refresh_times.append(time.perf_counter() - t0)
        assert outcome == "succeeded", outcome
        statements = len(queries)
    state = ReadinessState.objects.get(tenant=tenant)
    print(
        f"tenant: {state.devices_total:,} devices ({state.devices_protected:,} protected), "
        f"{state.identities_total:,} identities, {state.actions_total} actions"
    )
    print(
        f"environment_facts (reads only): p50 {statistics.median(facts_times) * 1000:.0f} ms, "
        f"p95 {percentile(facts_times, 95) * 1000:.0f} ms"
    )
    print(
        f"readiness_refresh (whole refresh): p50 {statistics.median(refresh_times) * 1000:.0f} ms, "
        f"p95 {percentile(refresh_times, 95) * 1000:.0f} ms, max {max(refresh_times) * 1000:.0f} ms "
        f"over {args.repeat} runs; {statements} SQL statements per refresh"
    )
    print("target < 2000 ms:", "met" if max(refresh_times) < 2 else "NOT met")


if __name__ == "__main__":
    main()
