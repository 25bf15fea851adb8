"""Benchmark: the provider's onboarding console at 1,000 and 10,000 tenants.

Run against PostgreSQL::

    DATABASE_URL=postgres://root@127.0.0.1:5432/portal_onb_bench .venv/bin/python bench/onboarding_console.py

The database is created if missing and migrated. Two provider organizations get
1,000 and 10,000 synthetic tenants (bulk SQL), each with two welcome links (the
first one revoked by a resend) for two tenants in three, guide progress for every
other tenant and a readiness state for every third. Then it prints, per size:

* the number of SQL queries of one console page (must be equal for both sizes),
* p50/p95 wall time of the first page and of a filtered page (full Django
  request through the test client),
* p50/p95 of the database's own time for the console's main query (EXPLAIN ANALYZE).

Options: ``--repeat N`` (default 20).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING, TypedDict

from _setup import QueryLog, bootstrap, percentile

if TYPE_CHECKING:
    from tenancy.models import ProviderOrganization, User


class ConsoleResult(TypedDict):
    queries: int
    page: list[float]
    filtered: list[float]
    db: list[float]


def load_provider(size: int) -> tuple[ProviderOrganization, User]:
    """A provider organization with ``size`` tenants and its service delivery manager (reused on later runs)."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from onboarding.links import new_nonce
    from onboarding.models import GUIDE_STEPS, GuideProgress, Invitation
    from readiness.models import ReadinessState
    from tenancy.models import ProviderOrganization, ProviderRole, ProviderStaff, ServicePhase, Tenant
    from tests import factories

    domain = f"bench{size}.experts.example"
    org, created = ProviderOrganization.objects.get_or_create(domain=domain, defaults={"name": f"Bench MSSP {size}"})
    email = f"sdm@{domain}"
    if not created:
        return org, ProviderStaff.objects.get(user__email=email).user
    staff = factories.user(email)
    ProviderStaff.objects.create(user=staff, organization=org, role=ProviderRole.SERVICE_DELIVERY_MANAGER)
    phases = [ServicePhase.NOT_INVITED, ServicePhase.INVITED, ServicePhase.SETTING_UP]
    tenants = Tenant.objects.bulk_create(
        [
            Tenant(name=f"Tenant {i:05d}", primary_domain=f"t{i}.{domain}", provider=org, service_phase=phases[i % 3])
            for i in range(size)
        ],
        batch_size=2000,
    )
    now = timezone.now()
    invitations = []
    for i, t in enumerate(tenants):
        if t.service_phase == ServicePhase.NOT_INVITED:
            continue
        for resend in (False, True):
            invitations.append(
                Invitation(
                    tenant=t,
                    nonce=new_nonce(),
                    invited_by=staff,
                    invited_by_label=email,
                    recipients=[f"admin@t{i}.{domain}"],
                    is_resend=resend,
                    created_at=now - timedelta(days=2 if not resend else 1),
                    expires_at=now + timedelta(days=12 if not resend else 13),
                    revoked_at=None if resend else now - timedelta(days=1),
                )
            )
    Invitation.objects.bulk_create(invitations, batch_size=2000)
    GuideProgress.objects.bulk_create(
        [
            GuideProgress(tenant=t, current_step=GUIDE_STEPS[i % 4].value, completed_steps=[], version=i % 7)
            for i, t in enumerate(tenants)
            if i % 2
        ],
        batch_size=2000,
    )
    ReadinessState.objects.bulk_create(
        [
            ReadinessState(tenant=t, last_refreshed_at=now, actions_total=12, actions_completed=i % 12)
            for i, t in enumerate(tenants)
            if i % 3 == 0
        ],
        batch_size=2000,
    )
    with connection.cursor() as cur:
        for table in ("tenancy_tenant", "onboarding_invitation", "onboarding_guideprogress"):
            cur.execute(f"ANALYZE {table}")
    return org, staff


def bench_console(org: ProviderOrganization, staff: User, repeat: int) -> ConsoleResult:
    from django.core import signals
    from django.db import close_old_connections, connection
    from django.test import Client

    from onboarding.selectors import console_tenants

    # As in the test runner: keep one connection across requests so the queries can be captured.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    client = Client()
    client.force_login(staff)
    url = "/provider/onboarding/"
    client.get(url)  # warm up
    log = QueryLog()
    with connection.execute_wrapper(log):
        response = client.get(url)
    assert response.status_code == 200
    timings: dict[str, list[float]] = {"page": [], "filtered": []}
    for _ in range(repeat):
        for key, target in (("page", url), ("filtered", f"{url}?phase=setting_up&q=Tenant%200&page=2")):
            start = time.perf_counter()
            assert client.get(target).status_code == 200
            timings[key].append((time.perf_counter() - start) * 1000)
    qs = console_tenants(organization=org)[:50]
    sql, params = qs.query.sql_with_params()
    db: list[float] = []
    with connection.cursor() as cur:
        if os.environ.get("PLAN"):
            cur.execute("EXPLAIN ANALYZE " + sql, params)
            print("\n".join(r[0] for r in cur.fetchall()))
        for _ in range(repeat):
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            db.append(float(cur.fetchone()[0][0]["Execution Time"]))
    return {"queries": len(log.executed), "page": timings["page"], "filtered": timings["filtered"], "db": db}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    bootstrap("portal_onb_bench", settings="tests.settings")

    print(f"Onboarding console benchmark ({args.repeat} runs each)")
    header = (
        f"{'tenants':>7} | {'queries':>7} | {'page p50':>9} | {'page p95':>9} | "
        f"{'filter p50':>10} | {'filter p95':>10} | {'db p50':>7} | {'db p95':>7}"
    )
    print(header)
    print("-" * len(header))
    for size in (1_000, 10_000):
        org, staff = load_provider(size)
        r = bench_console(org, staff, args.repeat)
        page, filtered, db = r["page"], r["filtered"], r["db"]
        print(
            f"{size:>7,} | {r['queries']:>7} | {percentile(page, 50):>7.1f}ms | {percentile(page, 95):>7.1f}ms | "
            f"{percentile(filtered, 50):>8.1f}ms | {percentile(filtered, 95):>8.1f}ms | "
            f"{percentile(db, 50):>5.1f}ms | {percentile(db, 95):>5.1f}ms"
        )


if __name__ == "__main__":
    main()
