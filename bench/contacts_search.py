"""Benchmark: the notification-contacts directory search at 1,000 and 100,000 entries.

Run against PostgreSQL (the production shape, with the pg_trgm indexes)::

    DATABASE_URL=postgres://root@127.0.0.1:5432/portal_contacts_bench .venv/bin/python bench/contacts_search.py

The database is created if missing and migrated; two tenants get synthetic
directories (9 users to 1 group, groups with members, accented names) of
1,000 and 100,000 entries, reused on later runs. Then a fixed mix of queries
(2-letter prefixes, names, substrings, accents, addresses, misses) runs
``contacts.selectors.directory_search`` repeatedly and prints p50/p95 of

* the wall time of one search as the view sees it (Python + round trip), and
* the database's own execution time (EXPLAIN ANALYZE of the same statement),

then the ``EXPLAIN (ANALYZE, BUFFERS)`` plan of each query at the largest
size, so a regression shows which index stopped being used. The figures and
plans are also written to ``var/bench/contacts_search.json``.

Options: ``--repeat N`` (default 20), ``--sizes 1000,100000``, ``--no-plans``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import TYPE_CHECKING, TypedDict

from _setup import ROOT, bootstrap, percentile

if TYPE_CHECKING:
    from tenancy.models import Tenant

FIRST = [
    "Anna", "Ana", "Andrés", "Benoît", "Björn", "Carlos", "Chloé", "Daniel", "Dmitri", "Élodie", "Emma", "Fatima",
    "François", "Grace", "Hannah", "Hiroshi", "Ingrid", "Isabel", "Jack", "James", "Javier", "Jürgen", "Karin",
    "Leila", "Liam", "Lucía", "Maria", "María", "Martin", "Mateo", "Mei", "Mohammed", "Nadia", "Noah", "Olivia",
    "Øystein", "Paul", "Priya", "Rafael", "Renée", "Samuel", "Sofia", "Søren", "Thomas", "Uma", "Victor", "Wei",
    "Yara", "Zoë", "Zoltán",
]  # fmt: skip
LAST = [
    "Abbott", "Andersen", "Brown", "Castillo", "Chen", "Clark", "Dubois", "Dupont", "Evans", "Fernández", "Fischer",
    "García", "Gonzalez", "Green", "Hall", "Hansen", "Ivanova", "Jensen", "Johnson", "Kim", "Kowalski", "Larsen",
    "Lee", "López", "Martin", "Martínez", "Meyer", "Moreau", "Müller", "Nakamura", "Nguyen", "Novak", "O'Brien",
    "Olsen", "Patel", "Pérez", "Petrov", "Quinn", "Rossi", "Sánchez", "Schmidt", "Singh", "Smith", "Suzuki",
    "Tanaka", "Thompson", "Walker", "Wang", "Weber", "Young",
]  # fmt: skip
TEAMS = ["Security", "SOC", "Incident Response", "IT Operations", "Finance", "Helpdesk", "Identity", "Network",
         "Cloud", "Compliance"]  # fmt: skip

QUERIES = [
    "ma",  # 2-letter: the widest match the UI allows
    "jo",
    "maria",  # accent-free query for María and Maria
    "garcía",
    "zoe",
    "martin",  # exact word, prefix of Martínez, substring of others
    "ohnson",  # substring only
    "soc on-call",  # a team
    "security 12",
    "anna.smith",  # address prefix
    "nobody-matches-this",
    "xq",  # a rare 2-letter substring: no trigram can help, the worst case
]


def load_directory(size: int) -> Tenant:
    from django.db import connection

    from environment.models import DirectoryGroup, DirectoryUser, GroupMembership
    from tenancy.models import ProviderOrganization, Tenant

    domain = f"bench{size}.example"
    provider, _ = ProviderOrganization.objects.get_or_create(
        domain="experts.example", defaults={"name": "Microsoft Defender Experts"}
    )
    tenant, created = Tenant.objects.get_or_create(
        primary_domain=domain, defaults={"name": f"Bench {size:,}", "provider": provider}
    )
    have = DirectoryUser.objects.filter(tenant=tenant).count() + DirectoryGroup.objects.filter(tenant=tenant).count()
    if have == size:
        return tenant
    DirectoryGroup.objects.filter(tenant=tenant).delete()
    DirectoryUser.objects.filter(tenant=tenant).delete()
    groups = size // 10
    users = size - groups
    started = time.perf_counter()
    batch: list[DirectoryUser] = []
    for i in range(users):
        first = FIRST[i % len(FIRST)]
        last = LAST[(i // len(FIRST)) % len(LAST)]
        name = f"{first} {last}" if i < len(FIRST) * len(LAST) else f"{first} {last} {i}"
        local = f"{first}.{last}{i}".lower().replace("'", "").replace(" ", "")
        upn = f"{local}@{domain}"
        mail = upn if i % 20 else ""  # some accounts have no mailbox
        batch.append(
            DirectoryUser(
                tenant=tenant,
                display_name=name,
                user_principal_name=upn,
                mail=mail,
                enabled=bool(i % 15),
            )
        )
        if len(batch) == 5000:
            DirectoryUser.objects.bulk_create(batch)
            batch = []
    DirectoryUser.objects.bulk_create(batch)
    group_rows = []
    for i in range(groups):
        name = f"{TEAMS[i % len(TEAMS)]} {i}" if i >= len(TEAMS) else f"{TEAMS[i]} on-call"
        mail = f"team{i}@{domain}" if i % 3 else ""
        group_rows.append(
            DirectoryGroup(
                tenant=tenant,
                display_name=name,
                mail=mail,
                mail_enabled=bool(mail),
            )
        )
    DirectoryGroup.objects.bulk_create(group_rows, batch_size=5000)
    user_ids = list(DirectoryUser.objects.filter(tenant=tenant).values_list("id", flat=True))
    group_ids = list(DirectoryGroup.objects.filter(tenant=tenant).values_list("id", flat=True))
    memberships = [
        GroupMembership(group_id=gid, user_id=user_ids[(gi * 7 + k) % len(user_ids)])
        for gi, gid in enumerate(group_ids)
        for k in range(5)
    ]
    GroupMembership.objects.bulk_create(memberships, batch_size=5000, ignore_conflicts=True)
    with connection.cursor() as cursor:
        # What autovacuum would do shortly after a bulk load.
        cursor.execute("VACUUM ANALYZE environment_directoryuser")
        cursor.execute("VACUUM ANALYZE environment_directorygroup")
        cursor.execute("VACUUM ANALYZE environment_groupmembership")
    print(f"  loaded {size:,} entries ({users:,} users, {groups:,} groups) in {time.perf_counter() - started:.1f}s")
    return tenant


class BenchResult(TypedDict):
    wall: list[float]
    db: list[float]
    plans: dict[str, str]
    per_query: dict[str, float]


def bench(tenant: Tenant, repeat: int) -> BenchResult:

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from contacts.selectors import directory_search

    wall: list[float] = []
    db: list[float] = []
    plans: dict[str, str] = {}
    per_query: dict[str, float] = {}
    for q in QUERIES:
        directory_search(tenant=tenant, query=q)  # warm the cache for this pattern
        for _ in range(repeat):
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as ctx:
                directory_search(tenant=tenant, query=q)
            wall.append((time.perf_counter() - started) * 1000)
            assert len(ctx.captured_queries) == 1, "the search must be one query"
        sql = ctx.captured_queries[0]["sql"]
        with connection.cursor() as cursor:
            for _ in range(max(3, repeat // 4)):
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                db.append(float(plan[0]["Execution Time"]))
                per_query[q] = min(per_query.get(q, 1e9), float(plan[0]["Execution Time"]))
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plans[q] = "\n".join(r[0] for r in cursor.fetchall())
    return {"wall": wall, "db": db, "plans": plans, "per_query": per_query}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--no-plans", action="store_true", help="leave out the query plans")
    args = parser.parse_args()

    bootstrap(
        "portal_contacts_bench",
        settings="defender_portal.settings",
        refusal="This benchmark measures the PostgreSQL search (pg_trgm); set DATABASE_URL to a postgres:// URL.",
    )

    print(f"Directory search benchmark ({len(QUERIES)} queries x {args.repeat} runs each)")
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        tenant = load_directory(size)
        result = bench(tenant, args.repeat)
        rows.append((size, result))
    if not args.no_plans:
        size, result = rows[-1]
        for q, plan in result["plans"].items():
            print(f"\n--- EXPLAIN (ANALYZE, BUFFERS) of {q!r} at {size:,} entries\n{plan}")
    print()
    print(f"{'entries':>10} | {'wall p50':>9} | {'wall p95':>9} | {'db p50':>8} | {'db p95':>8} | {'db max':>8}")
    print("-" * 68)
    for size, result in rows:
        wall, db = result["wall"], result["db"]
        print(
            f"{size:>10,} | {percentile(wall, 50):>7.2f}ms | {percentile(wall, 95):>7.2f}ms | "
            f"{percentile(db, 50):>6.2f}ms | {percentile(db, 95):>6.2f}ms | {max(db):>6.2f}ms"
        )
    size, result = rows[-1]
    print(f"\nBest database time per query at {size:,} entries:")
    for q, ms in result["per_query"].items():
        print(f"  {q!r:24} {ms:6.2f}ms")
    print(
        f"(median wall time at {size:,}: {statistics.median(result['wall']):.2f}ms; load average at the end: "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"
    )
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        str(size): {
            "wall_p50_ms": percentile(result["wall"], 50),
            "wall_p95_ms": percentile(result["wall"], 95),
            "db_p50_ms": percentile(result["db"], 50),
            "db_p95_ms": percentile(result["db"], 95),
            "db_best_ms_per_query": result["per_query"],
            "plans": result["plans"],
        }
        for size, result in rows
    }
    (out / "contacts_search.json").write_text(json.dumps(summary, indent=2))
    print(f"Written to {out / 'contacts_search.json'}")


if __name__ == "__main__":
    main()
