"""Benchmark: the Permissions page and the access sweeps at scale.

Run against PostgreSQL::

    DATABASE_URL=postgres://root@127.0.0.1:5432/portal_perm_bench .venv/bin/python bench/permissions_page.py

The database is created if missing and migrated. Two tenants get synthetic
device inventories (6 device groups / 10,000 devices and 60 device groups /
100,000 devices, every tenth device outside any group), with both access
levels granted and "Access security data from all devices" off, so the page
computes the groups out of reach and the per-group effective access. It then
prints, per tenant:

* the number of SQL queries of one page view (must be equal for both sizes),
* p50/p95 wall time of the page (full Django request through the test client),
* p50/p95 of the database's own time for the device-group aggregate
  (EXPLAIN ANALYZE).

Finally it grants ``--sweep`` tenants' access that has just ended and times
one expiry sweep over all of them (one conditional UPDATE, one bulk audit
insert, one version bump per batch of 500 relationships).

Options: ``--repeat N`` (default 20), ``--sweep N`` (default 2000).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import TYPE_CHECKING, TypedDict

from _setup import QueryLog, bootstrap, percentile

if TYPE_CHECKING:
    from tenancy.models import Tenant, User


class PageResult(TypedDict):
    queries: int
    wall: list[float]
    db: list[float]


def load_tenant(name: str, groups: int, devices: int) -> tuple[Tenant, User]:
    from django.db import connection

    from permissions.selectors import access_levels_state
    from permissions.services import access_levels_set, all_devices_set
    from tenancy.models import Membership, Tenant, TenantRole, User
    from tests import factories

    domain = f"{name.lower()}.bench.example"
    tenant = Tenant.objects.filter(primary_domain=domain).first()
    if tenant is not None:
        admin = Membership.objects.get(tenant=tenant, role=TenantRole.GLOBAL_ADMINISTRATOR).user
        return tenant, admin
    tenant = factories.tenant(name, domain)
    admin = User.objects.filter(email=f"admin@{domain}").first() or factories.member(
        tenant, TenantRole.GLOBAL_ADMINISTRATOR, f"admin@{domain}"
    )
    access_levels_set(
        tenant=tenant,
        acting_user=admin,
        investigate=True,
        respond=True,
        expected_version=1,
        recently_authenticated=True,
    )
    state = access_levels_state(tenant=tenant)
    all_devices_set(tenant=tenant, acting_user=admin, enabled=False, expected_version=state.version, confirm=True)
    ids = [factories.device_group(tenant, f"Group {i:02d}").pk for i in range(groups)]
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO environment_device
                (tenant_id, name, os_platform, onboarding_state, av_mode, device_group_id,
                 last_seen, onboarded_at, updated_at)
            SELECT %s, 'bench-' || g, 'windows11', 'onboarded', 'active',
                   CASE WHEN g %% 10 = 0 THEN NULL ELSE (%s::bigint[])[1 + g %% %s] END, now(), now(), now()
            FROM generate_series(1, %s) AS g
            """,
            [tenant.pk, ids, len(ids), devices],
        )
    # Autovacuum would do this in production; without it the index-only scans visit the heap.
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE environment_device")
    return tenant, admin


def bench_page(tenant: Tenant, admin: User, repeat: int) -> PageResult:
    from django.core import signals
    from django.db import close_old_connections, connection
    from django.test import Client

    from permissions.selectors import device_scope_queryset

    # As in the test runner: keep one connection across requests so the queries can be captured.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    client = Client()
    client.force_login(admin)
    client.get("/settings/defender-experts/permissions/")  # warm up
    log = QueryLog()
    with connection.execute_wrapper(log):
        response = client.get("/settings/defender-experts/permissions/")
    assert response.status_code == 200
    wall: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get("/settings/defender-experts/permissions/")
        wall.append((time.perf_counter() - start) * 1000)
    qs = device_scope_queryset(tenant=tenant)
    sql, params = qs.query.sql_with_params()
    db: list[float] = []
    with connection.cursor() as cur:
        if os.environ.get("PLAN"):
            cur.execute("EXPLAIN ANALYZE " + sql, params)
            print("\n".join(r[0] for r in cur.fetchall()))
        for _ in range(repeat):
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            db.append(float(cur.fetchone()[0][0]["Execution Time"]))
    return {"queries": len(log.executed), "wall": wall, "db": db}


def bench_sweep(count: int) -> tuple[int, float]:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from permissions.models import AccessGrant, AccessLevel, AccessState, GrantRole, ServiceProviderAccess
    from permissions.services import access_grants_expire_due
    from tenancy.models import Tenant
    from tests import factories

    org = factories.provider_org()
    stamp = int(time.time())
    tenants = Tenant.objects.bulk_create(
        [
            Tenant(name=f"Sweep {stamp}-{i}", primary_domain=f"s{stamp}-{i}.bench.example", provider=org)
            for i in range(count)
        ]
    )
    now = timezone.now()
    rels = ServiceProviderAccess.objects.bulk_create(
        [ServiceProviderAccess(tenant=t, provider=org, state=AccessState.ACTIVE, granted_at=now) for t in tenants]
    )
    AccessGrant.objects.bulk_create(
        [
            AccessGrant(
                access=r,
                tenant_id=r.tenant_id,
                level=AccessLevel.INVESTIGATE,
                role=GrantRole.SECURITY_READER,
                starts_at=now - timedelta(days=30),
                ends_at=now - timedelta(seconds=1),
            )
            for r in rels
        ]
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE permissions_accessgrant")
    start = time.perf_counter()
    expired = access_grants_expire_due()
    return expired, (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sweep", type=int, default=2000)
    args = parser.parse_args()
    bootstrap("portal_perm_bench", settings="tests.settings")

    print(f"Permissions page benchmark ({args.repeat} runs each)")
    print(
        f"{'groups':>6} | {'devices':>8} | {'queries':>7} | {'page p50':>9} | {'page p95':>9} | "
        f"{'agg p50':>8} | {'agg p95':>8}"
    )
    print("-" * 74)
    for name, groups, devices in (("Small", 6, 10_000), ("Large", 60, 100_000)):
        tenant, admin = load_tenant(name, groups, devices)
        r = bench_page(tenant, admin, args.repeat)
        wall, db = r["wall"], r["db"]
        print(
            f"{groups:>6} | {devices:>8,} | {r['queries']:>7} | {percentile(wall, 50):>7.1f}ms | "
            f"{percentile(wall, 95):>7.1f}ms | {percentile(db, 50):>6.1f}ms | {percentile(db, 95):>6.1f}ms"
        )
    if args.sweep:
        expired, ms = bench_sweep(args.sweep)
        print(f"\nExpiry sweep: {expired:,} grants ended in {ms:.0f}ms ({ms / max(expired, 1):.2f}ms per grant)")
    print(f"(median page time at the largest size: {statistics.median(wall):.1f}ms)")


if __name__ == "__main__":
    main()
