"""Benchmark: every page over HTTP, served by gunicorn as in production, against a trivial reference.

    make bench-http                     # or: .venv/bin/python bench/http_pages.py [options]

What it does, with nothing to set up by hand:

1. installs ``wrk`` from Debian if it is missing (as root, with apt-get);
2. creates and migrates its own PostgreSQL database (``portal_http_bench`` on 127.0.0.1:5432 unless
   ``DATABASE_URL`` names another), seeds the demo with ``seed_demo --devices 100000``, refreshes the
   readiness assessment of both demo tenants and gives Contoso ``--history`` days of daily snapshots;
3. collects the static files and starts gunicorn with the ``web`` command of docker-compose.yml, bound
   to loopback, with the production settings (``DEBUG=0``, manifest static files, persistent
   connections, the Redis cache, TLS terminated by a proxy: requests carry ``X-Forwarded-Proto``);
4. signs in (the demo admin of Contoso for tenant pages, the service delivery manager for the
   provider's pages) and, for ``--rounds`` rounds, runs ``wrk`` on the reference ``/readyz/`` (one
   ``SELECT 1``), then on each page followed by the reference again, so that every page is timed
   between two runs of the reference;
5. prints, per page, the median over the rounds of its **ratio** (requests per second of the page
   divided by the mean of the two reference runs around it), p50 and p99 latency, CPU time per request
   (gunicorn workers plus their PostgreSQL backends) and the SQL queries of one request; and writes
   everything, raw runs included, to ``var/bench/http-<time>.json`` (and ``var/bench/http-latest.json``).

Read the ratios, not the absolute figures: they compare pages within one run on one machine, so load
from other programs cancels out to a good extent. Absolute requests per second differ between
machines and between runs and mean nothing on their own. See the README, "Benchmarks".

Options: ``--devices N`` (100000), ``--history N`` (180 daily snapshots), ``--rounds N`` (3),
``--duration S`` (5 seconds per wrk run), ``--connections N`` (16), ``--threads N`` (2),
``--port N`` (a free one), ``--pages A,B`` (only pages whose name contains A or B), ``--list``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _setup import ROOT, bootstrap

# The production settings as docker-compose.yml gives them to `web`, for loopback: TLS ends at a proxy
# in front of gunicorn (X-Forwarded-Proto), so the secure-cookie and redirect settings stay strict.
SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "defender_portal.settings",
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123456789",
    "ALLOWED_HOSTS": "127.0.0.1",
    "SECURE_PROXY_SSL_HEADER": "1",
    "TRUSTED_PROXY_HOPS": "1",
    "SECURE_SSL_REDIRECT": "1",
    # Manifest static files, as in the image (the test settings' finders are off).
    "PORTAL_TESTING": "0",
}
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}
# The trivial reference: one SELECT 1, answered before the rest of the middleware (/healthz/ also pings the broker).
REFERENCE = "/readyz/"
# A run with fewer answers than this is measured again for longer (up to MAX_DURATION seconds).
MIN_REQUESTS = 30
MAX_DURATION = 30
OUT_DIR = ROOT / "var" / "bench"

# wrk reports through a Lua `done` hook: one line of JSON, easy to find in its output.
WRK_SCRIPT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "status_errors": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass
class Page:
    name: str
    path: str
    # Who is signed in: "admin" (Contoso's Global Administrator), "sdm" (provider staff) or "" (nobody).
    user: str
    # Text the page must contain, so a redirect or an error page is never timed by mistake.
    expect: str


@dataclass
class Run:
    path: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    cpu_ms_per_request: float | None
    status_errors: int
    socket_errors: int


@dataclass
class Row:
    page: str
    path: str
    queries: int
    ratios: list[float] = field(default_factory=list)
    cpu_ratios: list[float] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)


def pages(contoso_id: int, message_id: int | None) -> list[Page]:
    ds = "/settings/defender-experts"
    listed = [
        Page("Sign-in page", "/sign-in/", "", "Sign in"),
        Page("Defender Experts (landing)", f"{ds}/", "admin", "Defender Experts"),
        Page("Get started (Permissions step)", f"{ds}/get-started/permissions/", "admin", "Permissions"),
        Page("Permissions", f"{ds}/permissions/", "admin", "Permissions"),
        Page("Notification contacts", f"{ds}/notification-contacts/", "admin", "Notification contacts"),
        Page("Contact search (typeahead)", f"{ds}/notification-contacts/search/?q=ma", "admin", ""),
        Page("Service status", f"{ds}/service-status/", "admin", "Service status"),
        Page("Service status: devices not protected", f"{ds}/service-status/devices/unprotected/", "admin", ""),
        Page("Audit log", f"{ds}/audit-log/", "admin", "Audit log"),
        Page("Environment overview", "/environment/", "admin", "Environment"),
        Page("Environment devices", "/environment/devices/", "admin", "Devices"),
        Page("Environment devices (filtered)", "/environment/devices/?av=passive", "admin", "Devices"),
        Page("Environment domain controllers", "/environment/domain-controllers/", "admin", ""),
        Page("Environment directory", "/environment/directory/", "admin", ""),
        Page("Environment security settings", "/environment/settings/", "admin", ""),
        Page("Environment licences", "/environment/licences/", "admin", ""),
        Page("Onboarding console (provider)", "/provider/onboarding/", "sdm", "Onboarding"),
        Page("Provider: tenant", f"/provider/onboarding/tenants/{contoso_id}/", "sdm", "Contoso"),
        Page("Provider: outbox", "/provider/outbox/", "sdm", "Outbox"),
        Page("Provider: access", "/provider/access/", "sdm", ""),
        Page("Provider: refresh runs", "/provider/readiness-runs/", "sdm", ""),
        Page("Provider: readiness of a tenant", f"/provider/readiness/tenants/{contoso_id}/", "sdm", "Contoso"),
    ]
    if message_id is not None:
        listed.append(Page("Provider: outbox message", f"/provider/outbox/{message_id}/", "sdm", ""))
    return listed


# --- Set-up ------------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("• Installing wrk (Debian package)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: install it (apt-get install wrk) and run again.")
    return found


def seed(devices: int, history: int) -> dict[str, Any]:
    """The demo at ``devices`` devices, assessed, with ``history`` daily snapshots for Contoso."""
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from demo.seed import CONTOSO_DOMAIN
    from environment.models import Device
    from readiness.models import ReadinessState, Snapshot
    from readiness.services import readiness_claim_due, readiness_create_missing_states, readiness_refresh
    from tenancy.models import Tenant

    started = time.perf_counter()
    contoso = Tenant.objects.filter(primary_domain=CONTOSO_DOMAIN).first()
    if contoso is None or Device.objects.filter(tenant=contoso).count() != devices:
        print(f"• Seeding the demo with {devices:,} devices (once per database)")
        call_command("seed_demo", devices=devices)
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
        contoso = Tenant.objects.get(primary_domain=CONTOSO_DOMAIN)
    # A fresh assessment of every tenant, as the beat sweep would make it.
    readiness_create_missing_states()
    now = timezone.now()
    ReadinessState.objects.update(next_refresh_at=now, lease_expires_at=None)
    for claimed in readiness_claim_due(now=now + timedelta(seconds=1)):
        readiness_refresh(tenant_id=claimed.tenant_id, generation=claimed.generation)
    # Months of daily history: copies of the latest snapshot, one a day before it.
    latest = Snapshot.objects.filter(tenant=contoso).order_by("-taken_at", "-id").first()
    have = Snapshot.objects.filter(tenant=contoso).count()
    if latest is not None and have < history:
        oldest = Snapshot.objects.filter(tenant=contoso).order_by("taken_at", "id").first()
        assert oldest is not None
        base = {f.attname: getattr(latest, f.attname) for f in Snapshot._meta.concrete_fields if f.attname != "id"}
        Snapshot.objects.bulk_create(
            Snapshot(**{**base, "run_id": None, "taken_at": oldest.taken_at - timedelta(days=day)})
            for day in range(1, history - have + 1)
        )
    return {
        "contoso_id": contoso.pk,
        "devices": Device.objects.filter(tenant=contoso).count(),
        "snapshots": Snapshot.objects.filter(tenant=contoso).count(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn_command(port: int) -> list[str]:
    """The `web` command of docker-compose.yml, bound to loopback."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = list(compose["services"]["web"]["command"])
    bind = command.index("--bind")
    command[bind + 1] = f"127.0.0.1:{port}"
    executable = Path(sys.executable).parent / command[0]
    return [str(executable if executable.exists() else command[0]), *command[1:]]


def wait_until_up(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(_request(port, REFERENCE, ""), timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise SystemExit(f"gunicorn did not answer on port {port} within 60 s; see {log}")


def _request(port: int, path: str, cookie: str) -> urllib.request.Request:
    headers = dict(PROXY_HEADERS)
    if cookie:
        headers["Cookie"] = cookie
    return urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def session_cookies() -> dict[str, str]:
    """A signed-in session per user, created through Django's own login (sessions live in the database)."""
    from django.test import Client

    from demo.seed import CONTOSO_DOMAIN, SDM_EMAIL
    from tenancy.models import User

    cookies = {"": ""}
    for key, email in (("admin", f"admin@{CONTOSO_DOMAIN}"), ("sdm", SDM_EMAIL)):
        client = Client()
        client.force_login(User.objects.get(email=email), backend="django.contrib.auth.backends.ModelBackend")
        cookies[key] = f"sessionid={client.cookies['sessionid'].value}"
    return cookies


def check_static_caching(port: int) -> dict[str, str]:
    """How a static file (by its hashed name, as pages link it) is cached: far in the future, immutable."""
    from django.templatetags.static import static

    url = static("css/readiness.css")
    with urllib.request.urlopen(_request(port, url, ""), timeout=10) as response:
        return {"url": url, "cache_control": response.headers.get("Cache-Control", "")}


def check_page(port: int, page: Page, cookie: str) -> None:
    """The page answers 200 with its text over HTTP, so wrk never times a redirect or an error page."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(_request(port, page.path, cookie), timeout=30) as response:
            body = response.read().decode("utf-8", "replace")
            status = response.status
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{page.name} ({page.path}) answered {exc.code}; the benchmark needs 200.") from None
    if status != 200 or (page.expect and page.expect not in body):
        raise SystemExit(f"{page.name} ({page.path}) answered {status} without {page.expect!r}.")


def count_queries(page: Page) -> int:
    """SQL statements of one request to the page, in this process with the server's settings (warm caches)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from demo.seed import CONTOSO_DOMAIN, SDM_EMAIL

    client = Client(HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
    if page.user:
        email = f"admin@{CONTOSO_DOMAIN}" if page.user == "admin" else SDM_EMAIL
        user = get_user_model().objects.get(email=email)
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    client.get(page.path)  # warm-up: caches filled as a steady stream of requests would have them
    with CaptureQueriesContext(connection) as captured:
        response = client.get(page.path)
    if response.status_code != 200:
        raise SystemExit(f"{page.name} ({page.path}) answered {response.status_code} in-process.")
    return len(captured)


# --- Measuring ----------------------------------------------------------------------------------------


def _cpu_ticks(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone: its last ticks are lost, which only makes a run look cheaper by a hair
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def _server_pids(master: int, database: str) -> set[int]:
    """gunicorn's workers and the PostgreSQL backends connected to the benchmark's database."""
    from django.db import connection

    children = {
        int(p) for p in subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    }
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            [database],
        )
        backends = {row[0] for row in cur.fetchall()}
    return children | backends


def wrk(
    binary: str,
    script: Path,
    args: argparse.Namespace,
    port: int,
    path: str,
    cookie: str,
    master: int,
    database: str,
    duration: int,
) -> Run:
    command = [
        binary,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    for name, value in PROXY_HEADERS.items():
        command += ["-H", f"{name}: {value}"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    command.append(f"http://127.0.0.1:{port}{path}")
    pids = _server_pids(master, database)
    ticks_before = _cpu_ticks(pids)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    pids |= _server_pids(master, database)
    ticks = _cpu_ticks(pids) - ticks_before
    match = re.search(r"^WRKJSON (.*)$", output, re.MULTILINE)
    if match is None:
        raise SystemExit(f"Unexpected wrk output:\n{output}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    requests = data["requests"]
    cpu = ticks / os.sysconf("SC_CLK_TCK") * 1000 / requests if requests else None
    return Run(
        path=path,
        requests=requests,
        seconds=round(seconds, 2),
        rps=round(requests / seconds, 1),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        cpu_ms_per_request=round(cpu, 2) if cpu is not None else None,
        status_errors=data["status_errors"],
        socket_errors=data["socket_errors"],
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[Row], reference: list[Run]) -> None:
    ref_cpu = [r.cpu_ms_per_request for r in reference if r.cpu_ms_per_request]
    print()
    print(
        f"{'page':<40} {'ratio':>6} {'min':>6} {'max':>6} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'cpu ms':>7} {'cpu ratio':>9} {'queries':>7}"
    )
    print(
        f"{'reference ' + REFERENCE:<40} {1:>6.2f} {'':>6} {'':>6} "
        f"{statistics.median(r.rps for r in reference):>7.0f} "
        f"{statistics.median(r.p50_ms for r in reference):>7.1f} "
        f"{statistics.median(r.p99_ms for r in reference):>7.1f} "
        f"{_fmt(statistics.median(ref_cpu) if ref_cpu else None, '>7.2f')} {'':>9} {1:>7}"
    )
    for row in rows:
        cpu = [r.cpu_ms_per_request for r in row.runs if r.cpu_ms_per_request]
        print(
            f"{row.page[:40]:<40} {statistics.median(row.ratios):>6.3f} {min(row.ratios):>6.3f} "
            f"{max(row.ratios):>6.3f} {statistics.median(r.rps for r in row.runs):>7.0f} "
            f"{statistics.median(r.p50_ms for r in row.runs):>7.1f} "
            f"{statistics.median(r.p99_ms for r in row.runs):>7.1f} "
            f"{_fmt(statistics.median(cpu) if cpu else None, '>7.2f')} "
            f"{_fmt(statistics.median(row.cpu_ratios) if row.cpu_ratios else None, '>9.3f')} {row.queries:>7}"
        )
    print()
    print(
        "ratio: the page's requests per second over the mean of the two reference runs around it (median of the "
        "rounds; min and max beside it). cpu ms: gunicorn plus PostgreSQL CPU time per request; cpu ratio: the "
        "reference's over the page's. Compare ratios within one run, not absolute figures across machines."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=180, help="daily snapshots of Contoso's assessment")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--pages",
        default="",
        help="only the pages whose name contains one of these comma-separated words (case-insensitive)",
    )
    parser.add_argument("--list", action="store_true", help="list the pages and exit")
    args = parser.parse_args()

    for name, value in SERVER_ENV.items():
        os.environ[name] = (
            value if name in ("PORTAL_TESTING", "DJANGO_SETTINGS_MODULE") else os.environ.get(name, value)
        )
    binary = ensure_wrk()
    bootstrap(
        "portal_http_bench",
        settings="defender_portal.settings",
        redis=True,
        refusal="The HTTP benchmark serves from PostgreSQL: set DATABASE_URL=postgres://...",
    )
    from django.conf import settings
    from django.core.management import call_command

    from outbox.models import OutboxMessage

    data = seed(args.devices, args.history)
    message = OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first()
    wanted = [w.strip().lower() for w in args.pages.split(",")]
    selected = [p for p in pages(data["contoso_id"], message) if any(w in p.name.lower() for w in wanted)]
    if args.list:
        print("\n".join(f"{p.name}: {p.path}" for p in selected))
        return
    print(f"• {data['devices']:,} devices, {data['snapshots']} snapshots of Contoso (set-up {data['seconds']} s)")
    call_command("collectstatic", interactive=False, verbosity=0)

    database = str(settings.DATABASES["default"]["NAME"])
    port = args.port or free_port()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log = OUT_DIR / "gunicorn.log"
    command = gunicorn_command(port)
    env = {**os.environ, **{k: os.environ[k] for k in SERVER_ENV}}
    print(f"• {' '.join(command)}  (log: {log.relative_to(ROOT)})")
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_up(port, server, log)
        static_caching = check_static_caching(port)
        print(
            f"• Static files: {static_caching['url']} is served with Cache-Control: {static_caching['cache_control']}"
        )
        cookies = session_cookies()
        rows = []
        for page in selected:
            check_page(port, page, cookies[page.user])
            rows.append(Row(page=page.name, path=page.path, queries=count_queries(page)))
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script_file:
            script_file.write(WRK_SCRIPT)
        script = Path(script_file.name)

        def measure(path: str, cookie: str) -> Run:
            run = wrk(binary, script, args, port, path, cookie, server.pid, database, args.duration)
            if run.requests < MIN_REQUESTS:
                # Too few answers in the time to tell a rate (a slow page, a busy machine): measure it
                # again for long enough to get about MIN_REQUESTS, within a bound.
                seconds = min(
                    MAX_DURATION, max(2 * args.duration, round(args.duration * MIN_REQUESTS / max(run.requests, 1)))
                )
                run = wrk(binary, script, args, port, path, cookie, server.pid, database, seconds)
            return run

        # Warm every worker and every page once before the first measured run.
        measure(REFERENCE, "")
        reference: list[Run] = []
        for round_number in range(1, args.rounds + 1):
            print(f"• Round {round_number} of {args.rounds}", flush=True)
            before = measure(REFERENCE, "")
            reference.append(before)
            for page, row in zip(selected, rows, strict=True):
                run = measure(page.path, cookies[page.user])
                after = measure(REFERENCE, "")
                reference.append(after)
                if run.status_errors or run.socket_errors:
                    print(f"  ! {page.name}: {run.status_errors} error responses, {run.socket_errors} socket errors")
                row.runs.append(run)
                row.ratios.append(round(run.rps / ((before.rps + after.rps) / 2), 4))
                if run.cpu_ms_per_request and before.cpu_ms_per_request and after.cpu_ms_per_request:
                    ref_cpu = (before.cpu_ms_per_request + after.cpu_ms_per_request) / 2
                    row.cpu_ratios.append(round(ref_cpu / run.cpu_ms_per_request, 4))
                print(f"  {page.name:<40} ratio {row.ratios[-1]:.3f}  ({run.rps:.0f} req/s)", flush=True)
                before = after
        script.unlink()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    print_table(rows, reference)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version()},
        "config": {k: v for k, v in vars(args).items() if k not in ("list",)} | {"gunicorn": command},
        "data": data,
        "static_caching": static_caching,
        "reference": [asdict(r) for r in reference],
        "pages": [
            {
                "page": row.page,
                "path": row.path,
                "queries": row.queries,
                "ratio": statistics.median(row.ratios),
                "cpu_ratio": statistics.median(row.cpu_ratios) if row.cpu_ratios else None,
                "p50_ms": statistics.median(r.p50_ms for r in row.runs),
                "p99_ms": statistics.median(r.p99_ms for r in row.runs),
                "ratios": row.ratios,
                "runs": [asdict(r) for r in row.runs],
            }
            for row in rows
        ],
    }
    path = OUT_DIR / f"http-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    (OUT_DIR / "http-latest.json").write_text(json.dumps(result, indent=2))
    print(f"Written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
