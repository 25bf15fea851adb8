#!/usr/bin/env python3
"""The chaos suite (`make chaos`; `--short` in CI): the portal's background work under faults.

It starts everything it uses on loopback and free ports, and stops exactly what it started:
its own Redis (the broker), its own database (a private PostgreSQL cluster when the machine has
PostgreSQL's server binaries and a ``postgres`` user, else a database of its own on the
PostgreSQL at DATABASE_URL's server), an SMTP server that counts every copy of every message by
``Message-ID``, Celery workers (prefork) and beat. Then:

1. **Sweeps under faults.** Every tenant is due; while beat sweeps and the worker refreshes, the
   worker's whole process group is SIGKILLed again and again, Redis is killed and restarted empty,
   and PostgreSQL is restarted (``pg_ctl restart -m fast``, private cluster only).
2. **Sending under faults.** Emails are queued through the outbox; the worker is SIGKILLed again
   and again while it sends (at least 20 times in the full form), and Redis is restarted.
3. **Several workers and two beats, no faults**, on the same database and broker: every tenant is
   due again and more mail is queued.

After each phase it waits (bounded) for the portal to settle and checks, printing figures:
worker kills, duplicate refreshes, stale tenants (due and never refreshed), runs left running,
emails per Message-ID, lost emails. Any breach fails the run (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.parser
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass(frozen=True)
class Plan:
    tenants: int
    emails: int
    sweep_kills: int
    send_kills: int
    redis_down_seconds: float
    smtp_delay: float
    crowd_workers: int
    crowd_tenants: int
    crowd_emails: int
    settle_seconds: int


FULL = Plan(
    tenants=600,
    emails=400,
    sweep_kills=8,
    send_kills=24,
    redis_down_seconds=10,
    smtp_delay=0.05,
    crowd_workers=3,
    crowd_tenants=600,
    crowd_emails=150,
    settle_seconds=240,
)
SHORT = Plan(
    tenants=100,
    emails=60,
    sweep_kills=3,
    send_kills=6,
    redis_down_seconds=4,
    smtp_delay=0.05,
    crowd_workers=2,
    crowd_tenants=100,
    crowd_emails=30,
    settle_seconds=120,
)

# The portal's timings, shortened so faults heal within seconds (the rules are the same as in production).
PORTAL_ENV = {
    "DJANGO_SETTINGS_MODULE": "defender_portal.settings",
    "SECRET_KEY": "chaos-suite-secret-key-not-for-production-0123456789abcdefghijklmnop",
    "DEBUG": "0",
    "CELERY_TASK_ALWAYS_EAGER": "0",
    "READINESS_SWEEP_SECONDS": "5",
    "READINESS_LEASE": "20",
    "READINESS_ENQUEUE_LEASE": "10",
    "READINESS_CLAIM_CHUNK": "100",
    "OUTBOX_SWEEP_SECONDS": "5",
    "OUTBOX_CLAIM_TIMEOUT": "10",
    "OUTBOX_MAX_ATTEMPTS": "50",
    "CELERY_VISIBILITY_TIMEOUT": "60",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "127.0.0.1",
    "EMAIL_TIMEOUT": "10",
    "LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",
}


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # noqa: BLE001, S110 - a service that is still starting
            pass
        time.sleep(interval)
    return False


def stop_group(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop a process we started in its own session, and everything it forked."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# --- Services ---------------------------------------------------------------------------------


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("chaos: redis-server is not installed (apt-get install redis-server)")
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        if not wait_for(self.ping, 20):
            raise SystemExit(f"chaos: Redis on port {self.port} didn't start")

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        stop_group(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        stop_group(self.proc)


class Postgres:
    """A private server of our own (the embedded PostgreSQL, so it can be restarted), else a database of our own
    on the server at DATABASE_URL (no restart then: others use that server)."""

    def __init__(self, workdir: Path, shared_url: str) -> None:
        self.workdir = workdir
        self.shared_url = shared_url
        self.private: Any = None
        self.dbname = f"chaos_{os.getpid()}"
        self.url = ""

    def start(self) -> None:
        sys.path.insert(0, str(ROOT))
        from defender_portal.embedded_db import EmbeddedPostgres

        try:
            server = EmbeddedPostgres(self.workdir / "pgdata")
            server.start(fast=True)
            server.create_database(self.dbname)
        except Exception as exc:  # noqa: BLE001 - fall back to the shared server
            say(f"PostgreSQL: no private server ({type(exc).__name__}: {str(exc)[:200]}); using DATABASE_URL's")
        else:
            self.private = server
            self.url = server.url(self.dbname)
            say(f"PostgreSQL: a private server of its own (socket in {server.socket_dir})")
            return
        shared = urlparse(self.shared_url)
        self.url = shared._replace(path=f"/{self.dbname}").geturl()
        import psycopg

        with psycopg.connect(shared._replace(path="/postgres").geturl(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}"')
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        say(f"PostgreSQL: database {self.dbname} on {shared.hostname}:{shared.port or 5432} (no restart possible)")

    def restart(self) -> bool:
        """Stop (fast: connections are cut, in-flight transactions roll back) and start again."""
        if self.private is None:
            return False
        self.private.stop()
        self.private.start(fast=True)
        return True

    def stop(self) -> None:
        if self.private is not None:
            with contextlib.suppress(Exception):
                self.private.stop()
            return
        import psycopg

        with contextlib.suppress(Exception):
            admin = urlparse(self.shared_url)._replace(path="/postgres").geturl()
            with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


@dataclass
class Delivery:
    portal_id: str
    message_id: str


@dataclass
class SmtpSink:
    """Accepts every message after ``delay`` seconds, as a real server takes a moment, and counts it."""

    delay: float
    port: int = field(default_factory=free_port)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
                await asyncio.sleep(sink.delay)
                transport = getattr(server, "transport", None)
                if transport is not None and transport.is_closing():
                    return "421 Client went away"  # never acknowledged: not delivered
                headers = email.parser.BytesHeaderParser().parsebytes(envelope.content)
                with sink.lock:
                    sink.deliveries.append(
                        Delivery(
                            portal_id=str(headers.get("X-Portal-Message-Id", "")),
                            message_id=str(headers.get("Message-ID", "")),
                        )
                    )
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def count(self) -> int:
        with self.lock:
            return len(self.deliveries)

    def snapshot(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


class Celery:
    """Workers and beats, each in its own process group, logging to files."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0
        self.unexpected_exits: list[str] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.starts += 1
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [PY, "-m", "celery", "-A", "defender_portal", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def worker(self, name: str = "worker", concurrency: int = 2) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        ready_before = log.read_text(errors="replace").count(" ready.") if log.exists() else 0
        proc = self.start(
            name,
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname={name}@chaos",
        )
        wait_for(lambda: log.read_text(errors="replace").count(" ready.") > ready_before, 60, 0.2)
        return proc

    def beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        return self.start(
            name,
            "beat",
            "--loglevel=INFO",
            "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
            f"--pidfile={self.workdir / (name + '.pid')}",
            f"--schedule={self.workdir / (name + '.schedule')}",
        )

    def kill(self, name: str) -> None:
        stop_group(self.procs.get(name), signal.SIGKILL)

    def revive(self) -> None:
        """Beat is never killed here; if it stopped by itself (a database restart), say so and restart it."""
        for name, proc in list(self.procs.items()):
            if name.startswith("beat") and proc.poll() is not None:
                self.unexpected_exits.append(name)
                say(f"  {name} exited by itself (code {proc.returncode}); restarting it")
                self.beat(name)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            stop_group(proc)

    def alive(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def tail(self, lines: int = 40) -> str:
        out = []
        for log in sorted(self.workdir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


# --- The portal's data, read and written through Django ---------------------------------------


def retrying(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a database call, riding out a restart of PostgreSQL."""
    from django.db import InterfaceError, OperationalError, connection

    attempts = 60
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            with contextlib.suppress(Exception):
                connection.close()
            time.sleep(1)
    return None


def create_tenants(count: int, prefix: str) -> list[int]:
    from django.utils import timezone

    from readiness.models import ReadinessState
    from tenancy.models import ProviderOrganization, Tenant

    org, _ = ProviderOrganization.objects.get_or_create(
        domain="experts.example", defaults={"name": "Microsoft Defender Experts"}
    )
    tenants = Tenant.objects.bulk_create(
        [
            Tenant(name=f"{prefix} {i}", primary_domain=f"{prefix.lower()}-{i}.example", provider=org)
            for i in range(count)
        ]
    )
    now = timezone.now()
    ReadinessState.objects.bulk_create(
        [ReadinessState(tenant=t, next_refresh_at=now) for t in tenants], ignore_conflicts=True
    )
    return [t.pk for t in tenants]


def make_all_due() -> datetime:
    from django.utils import timezone

    from readiness.models import ReadinessState

    now = timezone.now()
    ReadinessState.objects.update(next_refresh_at=now)
    return now


def queue_emails(count: int, batch: str) -> list[int]:
    """Queue mail the way the portal does: outbox rows written in a transaction, kicked on commit."""
    from django.db import transaction

    from outbox.services import outbox_enqueue
    from tenancy.models import Tenant

    tenant = Tenant.objects.order_by("pk").first()
    ids: list[int] = []
    for start in range(0, count, 20):
        with transaction.atomic():
            for i in range(start, min(start + 20, count)):
                message = outbox_enqueue(
                    tenant=tenant,
                    kind="chaos.hello",
                    to=[f"contact{i}@chaos.example"],
                    subject=f"Chaos {batch} {i}",
                    template="emails/test/hello",
                    context={"name": f"{batch}-{i}"},
                )
                ids.append(message.pk)
    return ids


def unsent(ids: list[int]) -> int:
    from outbox.models import MessageStatus, OutboxMessage

    return OutboxMessage.objects.filter(pk__in=ids).exclude(status=MessageStatus.SENT).count()


def sending_now(ids: list[int]) -> int:
    from outbox.models import MessageStatus, OutboxMessage

    return OutboxMessage.objects.filter(pk__in=ids, status=MessageStatus.SENDING).count()


def refreshed_since(tenant_ids: list[int], since: datetime) -> int:
    from readiness.models import ReadinessState

    return ReadinessState.objects.filter(tenant_id__in=tenant_ids, last_refreshed_at__gte=since).count()


def runs_running() -> int:
    from readiness.models import RefreshRun, RunOutcome

    return RefreshRun.objects.filter(outcome=RunOutcome.RUNNING).count()


# --- Checks ---------------------------------------------------------------------------------------


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)

    def figure(self, text: str) -> None:
        self.lines.append(text)
        say("  " + text)

    def require(self, ok: bool, text: str) -> None:
        self.figure(("ok      " if ok else "BREACH  ") + text)
        if not ok:
            self.breaches.append(text)


def check_readiness(report: Report, phase: str, tenant_ids: list[int], since: datetime) -> None:
    from django.db.models import Count

    from readiness.models import ReadinessState, RefreshRun, RunOutcome, Snapshot

    runs = RefreshRun.objects.filter(tenant_id__in=tenant_ids, started_at__gte=since)
    outcomes = dict(runs.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
    succeeded = runs.filter(outcome=RunOutcome.SUCCEEDED)
    per_tenant = succeeded.values("tenant_id").annotate(n=Count("id")).filter(n__gt=1)
    duplicates = sum(row["n"] - 1 for row in per_tenant)
    per_generation = succeeded.values("tenant_id", "generation").annotate(n=Count("id")).filter(n__gt=1).count()
    refreshed = ReadinessState.objects.filter(tenant_id__in=tenant_ids, last_refreshed_at__gte=since).count()
    stale = len(tenant_ids) - refreshed
    snapshots = Snapshot.objects.filter(tenant_id__in=tenant_ids, taken_at__gte=since).count()
    running = RefreshRun.objects.filter(outcome=RunOutcome.RUNNING).count()
    report.figure(
        f"[{phase}] runs: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) + f"; snapshots {snapshots}"
    )
    report.require(refreshed == len(tenant_ids), f"[{phase}] due tenants refreshed: {refreshed} of {len(tenant_ids)}")
    report.require(stale == 0, f"[{phase}] stale tenants (due, never refreshed): {stale}")
    report.require(duplicates == 0, f"[{phase}] duplicate refreshes: {duplicates}")
    report.require(per_generation == 0, f"[{phase}] generations refreshed more than once: {per_generation}")
    report.require(snapshots == succeeded.count(), f"[{phase}] one snapshot per successful run: {snapshots}")
    report.require(running == 0, f"[{phase}] runs left running: {running}")


def check_mail(report: Report, phase: str, ids: list[int], sink: SmtpSink, faults: bool) -> None:
    from outbox.models import AttemptOutcome, MessageStatus, OutboxAttempt, OutboxMessage

    wanted = {str(i) for i in ids}
    copies: dict[str, list[str]] = defaultdict(list)
    for delivery in sink.snapshot():
        if delivery.portal_id in wanted:
            copies[delivery.portal_id].append(delivery.message_id)
    rows = {str(pk): m for pk, m in ((m.pk, m) for m in OutboxMessage.objects.filter(pk__in=ids))}
    lost = sorted(pk for pk in wanted if not copies.get(pk))
    several_ids = sorted(pk for pk, ids_ in copies.items() if len(set(ids_)) != 1)
    wrong_id = sorted(pk for pk, ids_ in copies.items() if set(ids_) != {rows[pk].rfc5322_message_id})
    resent = {pk: len(ids_) for pk, ids_ in copies.items() if len(ids_) > 1}
    all_ids = [mid for ids_ in copies.values() for mid in set(ids_)]
    shared = len(all_ids) - len(set(all_ids))
    not_sent = OutboxMessage.objects.filter(pk__in=ids).exclude(status=MessageStatus.SENT).count()
    expired = OutboxAttempt.objects.filter(message_id__in=ids, outcome=AttemptOutcome.CLAIM_EXPIRED).count()
    report.figure(
        f"[{phase}] emails: {len(ids)} rows, {sum(len(v) for v in copies.values())} copies delivered; "
        f"rows delivered more than once (same Message-ID): {len(resent)} "
        f"({sum(resent.values()) - len(resent)} extra copies); "
        f"attempts lost with a worker: {expired}"
    )
    report.require(
        not lost, f"[{phase}] lost emails: {len(lost)}" + (f" (rows {', '.join(lost[:10])})" if lost else "")
    )
    report.require(
        not several_ids and not wrong_id,
        f"[{phase}] Message-IDs per outbox row: exactly one for {len(copies) - len(several_ids)} of {len(copies)} "
        f"delivered rows; rows with another id than their own: {len(wrong_id)}",
    )
    report.require(shared == 0, f"[{phase}] Message-IDs shared by two rows: {shared}")
    report.require(not_sent == 0, f"[{phase}] rows not marked sent: {not_sent}")
    if not faults:
        report.require(
            not resent, f"[{phase}] without faults every email is delivered exactly once: {len(resent)} resent"
        )


# --- The run -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the short form CI runs (under 5 minutes)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the fault timings")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    args = parser.parse_args()
    # Stopped from outside (CI's time limit, Ctrl-C): still stop every process started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = SHORT if args.short else FULL
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="portal-chaos-"))
    say(f"{'short' if args.short else 'full'} form, seed {seed}, work directory {workdir}")

    redis = Redis(workdir)
    postgres = Postgres(workdir, os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/postgres"))
    sink = SmtpSink(delay=plan.smtp_delay)
    celery: Celery | None = None
    report = Report()
    kills = {"sweeps": 0, "sending": 0, "sending_mid_send": 0}
    try:
        redis.start()
        postgres.start()
        sink.start()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "EMAIL_"))},
            **PORTAL_ENV,
            "DATABASE_URL": postgres.url,
            "CELERY_BROKER_URL": redis.url,
            "REDIS_URL": "",
            "EMAIL_PORT": str(sink.port),
            "PORTAL_VAR_DIR": str(workdir / "var"),
        }
        env.pop("REDIS_URL")
        os.environ.update(env)
        os.environ.pop("REDIS_URL", None)
        sys.path.insert(0, str(ROOT))
        subprocess.run([PY, "manage.py", "migrate", "--verbosity=0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        celery = Celery(workdir, env)

        # --- Phase 1: sweeps under faults ---------------------------------------------------
        say(f"phase 1: {plan.tenants} tenants due; worker kills during sweeps, a Redis and a PostgreSQL restart")
        tenants = retrying(create_tenants, plan.tenants, "Sweep")
        since = retrying(make_all_due)
        celery.worker()
        celery.beat()
        redis_restarted = pg_restarted = False
        batches = 1
        phase_started = time.monotonic()
        while kills["sweeps"] < plan.sweep_kills and time.monotonic() - phase_started < plan.settle_seconds * 3:
            if retrying(refreshed_since, tenants, since) >= len(tenants):
                # All refreshed before enough kills: more tenants fall due, so every kill lands mid-sweep.
                batches += 1
                tenants += retrying(create_tenants, max(plan.tenants // 4, 20), f"Sweep{batches}")
            progress = retrying(refreshed_since, tenants, since)
            wait_for(lambda t=tenants, p=progress: retrying(refreshed_since, t, since) > p, 20, 0.2)
            time.sleep(rng.uniform(0.0, 1.5))
            celery.kill("worker")
            kills["sweeps"] += 1
            if kills["sweeps"] == max(1, plan.sweep_kills // 2):
                redis.kill()
                say(f"  Redis killed mid-sweep; restarting it empty in {plan.redis_down_seconds:.0f} s")
                time.sleep(plan.redis_down_seconds)
                redis.start()
                redis_restarted = True
            if kills["sweeps"] == max(1, plan.sweep_kills - 1):
                pg_restarted = postgres.restart()
                if pg_restarted:
                    say("  PostgreSQL restarted mid-sweep (pg_ctl stop -m fast, then start)")
            celery.worker()
            celery.revive()
        say(f"  {kills['sweeps']} kills during sweeps; waiting for every due tenant")
        wait_for(
            lambda: retrying(refreshed_since, tenants, since) >= len(tenants) and retrying(runs_running) == 0,
            plan.settle_seconds,
            1,
        )
        celery.revive()
        report.figure(f"[sweeps] worker SIGKILLs during sweeps: {kills['sweeps']}")
        report.figure(
            f"[sweeps] Redis restarts: {int(redis_restarted)}; PostgreSQL restarts: {int(pg_restarted)}"
            + ("" if postgres.private else " (no private server on this machine)")
        )
        retrying(check_readiness, report, "sweeps", tenants, since)

        # --- Phase 2: sending under faults --------------------------------------------------
        say(f"phase 2: {plan.emails} emails; at least {plan.send_kills} worker kills while sending, a Redis restart")
        mail_ids: list[int] = retrying(queue_emails, plan.emails, "send")
        redis_restarted = False
        batches = 1
        phase_started = time.monotonic()
        while kills["sending"] < plan.send_kills and time.monotonic() - phase_started < plan.settle_seconds * 3:
            if retrying(unsent, mail_ids) == 0:
                # Everything is out before enough kills: queue more, so every kill lands during sending.
                batches += 1
                mail_ids += retrying(queue_emails, max(plan.emails // 4, 20), f"send{batches}")
            before = sink.count()
            wait_for(lambda b=before: sink.count() > b, 20, 0.05)  # the worker is sending
            time.sleep(rng.uniform(0.0, 0.6))
            mid_send = retrying(sending_now, mail_ids) > 0
            celery.kill("worker")
            kills["sending"] += 1
            kills["sending_mid_send"] += int(mid_send)
            if kills["sending"] == plan.send_kills // 2 and not redis_restarted:
                redis.kill()
                say(f"  Redis killed while sending; restarting it empty in {plan.redis_down_seconds:.0f} s")
                time.sleep(plan.redis_down_seconds)
                redis.start()
                redis_restarted = True
            celery.worker()
            celery.revive()
        say(f"  {kills['sending']} kills while sending; waiting for the outbox to drain")
        drained = wait_for(lambda: retrying(unsent, mail_ids) == 0, plan.settle_seconds, 1)
        time.sleep(2)
        report.figure(
            f"[sending] worker SIGKILLs while sending: {kills['sending']} "
            f"({kills['sending_mid_send']} with a message in the hands of the worker); Redis restarts: "
            f"{int(redis_restarted)}; drained: {drained}"
        )
        retrying(check_mail, report, "sending", mail_ids, sink, faults=True)

        # --- Phase 3: several workers and two beats, no faults ------------------------------
        say(
            f"phase 3: {plan.crowd_workers} workers and 2 beats at once; every tenant due again, "
            f"{plan.crowd_emails} emails"
        )
        celery.kill("worker")
        crowd_tenants = tenants + retrying(create_tenants, max(plan.crowd_tenants - len(tenants), 0), "Crowd")
        since = retrying(make_all_due)
        for i in range(plan.crowd_workers):
            celery.worker(f"crowd{i}")
        celery.beat("beat2")
        crowd_mail: list[int] = retrying(queue_emails, plan.crowd_emails, "crowd")
        wait_for(
            lambda: (
                retrying(refreshed_since, crowd_tenants, since) >= len(crowd_tenants)
                and retrying(unsent, crowd_mail) == 0
            ),
            plan.settle_seconds,
            1,
        )
        time.sleep(12)  # two more sweeps: anything claimed twice would show now
        wait_for(lambda: retrying(runs_running) == 0, 30, 1)
        report.figure(f"[crowd] processes: {len(celery.alive())} running ({', '.join(sorted(celery.alive()))})")
        report.figure(f"beat restarts after exiting by itself: {len(celery.unexpected_exits)}")
        retrying(check_readiness, report, "crowd", crowd_tenants, since)
        retrying(check_mail, report, "crowd", crowd_mail, sink, faults=False)
    except Exception as exc:  # noqa: BLE001 - report, then fail
        report.breaches.append(f"the run itself failed: {type(exc).__name__}: {exc}")
        say(f"ERROR {type(exc).__name__}: {exc}")
    finally:
        if celery is not None:
            celery.stop_all()
        sink.stop()
        with contextlib.suppress(Exception):
            from django.db import connection

            connection.close()
        redis.stop()
        postgres.stop()

    total_kills = kills["sweeps"] + kills["sending"]
    say(f"done in {time.monotonic() - started:.0f} s; {total_kills} worker SIGKILLs in all; seed {seed}")
    if report.breaches:
        if celery is not None:
            print(celery.tail(), flush=True)
        say("FAILED: " + "; ".join(report.breaches))
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    say("PASSED: every check held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
