"""A real Celery worker and beat, against Redis and the test database, run the
readiness sweep and a refresh end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from defender_portal.env import database_url
from demo.environments import seed_environment
from readiness.models import ReadinessState, RefreshRun, RunOutcome, Snapshot
from tests import factories

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent


def _purge_broker() -> None:
    from defender_portal.celery import app

    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)


@pytest.fixture
def celery_env() -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "READINESS_SWEEP_SECONDS": "5",
        "DB_CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process below
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "defender_portal", *args],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so we stop exactly what we started
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@pytest.fixture
def celery_processes(celery_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    _purge_broker()
    logs = Path(tempfile.mkdtemp(prefix="readiness-e2e-"))
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(
            _start(
                [
                    "worker",
                    "--loglevel=INFO",
                    "--concurrency=1",
                    "--pool=prefork",
                    "--without-gossip",
                    "--without-mingle",
                    "--hostname=readiness-e2e@%h",
                ],
                celery_env,
                logs / "worker.log",
            )
        )
        started.append(
            _start(
                [
                    "beat",
                    "--loglevel=INFO",
                    "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
                    f"--pidfile={logs / 'beat.pid'}",
                ],
                celery_env,
                logs / "beat.log",
            )
        )
        yield {"logs": logs, "processes": started}
    finally:
        for proc in started:
            _stop(proc)


def _logs(logs: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(logs.glob("*.log")))


def test_beat_sweeps_and_a_worker_refreshes(celery_processes: dict[str, Any]) -> None:
    tenant = factories.tenant("Northwind", "northwind.example")
    seed_environment(tenant, devices=500)
    ReadinessState.objects.create(tenant=tenant, next_refresh_at=timezone.now())
    deadline = time.monotonic() + 90
    run = None
    while time.monotonic() < deadline:
        for proc in celery_processes["processes"]:
            assert proc.poll() is None, "a Celery process exited early\n" + _logs(celery_processes["logs"])
        run = RefreshRun.objects.filter(tenant=tenant, outcome=RunOutcome.SUCCEEDED).first()
        if run is not None:
            break
        time.sleep(1)
    assert run is not None, "no refresh recorded within 90 s\n" + _logs(celery_processes["logs"])
    assert run.finished_at is not None and run.duration_ms is not None and run.devices_total == 500
    assert run.worker  # recorded by the worker process
    state = ReadinessState.objects.get(tenant=tenant)
    assert state.last_refreshed_at is not None and state.devices_total == 500
    assert state.completed_generation == state.generation == run.generation
    assert state.lease_expires_at is None
    assert Snapshot.objects.filter(tenant=tenant).count() == 1
    # The next sweeps leave it alone: the next refresh is a day away.
    time.sleep(7)
    assert RefreshRun.objects.filter(tenant=tenant).count() == 1


@pytest.fixture
def start_worker(celery_env: dict[str, str]) -> Iterator[Any]:
    """``start_worker()`` starts a real worker (no beat); every one started is stopped afterwards."""
    _purge_broker()
    logs = Path(tempfile.mkdtemp(prefix="readiness-e2e-"))
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = _start(
            [
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "--hostname=readiness-e2e2@%h",
            ],
            celery_env,
            logs / "worker.log",
        )
        started.append(proc)
        return proc

    start.logs = logs
    try:
        yield start
    finally:
        for proc in started:
            _stop(proc)
        _purge_broker()


def test_lost_message_is_reclaimed_and_a_late_redelivery_is_a_no_op(start_worker: Any) -> None:
    """Redis loses the queued refresh (a restart): the lease lapses, the sweep claims the
    tenant again, a real worker refreshes it, and the old message arriving late does nothing."""
    from datetime import timedelta

    from defender_portal.celery import app
    from readiness.services import readiness_sweep
    from readiness.tasks import refresh_tenant

    tenant = factories.tenant("Tailspin", "tailspin.example")
    seed_environment(tenant, devices=120)
    ReadinessState.objects.create(tenant=tenant, next_refresh_at=timezone.now())
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # enqueue to the real broker, as beat's sweep does
    try:
        first = readiness_sweep()
        assert first.enqueued == 1
        old_generation = first.claimed[0].generation
        _purge_broker()  # the broker lost the message
        # Nothing happens while the lease holds; once it lapses the next sweep claims again.
        assert readiness_sweep().claimed_count == 0
        later = timezone.now() + timedelta(seconds=settings.READINESS_LEASE + 1)
        second = readiness_sweep(now=later)
        assert second.claimed_count == 1 and second.claimed[0].generation == old_generation + 1
        # The lost message turns up after all (redelivered late).
        refresh_tenant.apply_async(args=(tenant.pk, old_generation))
    finally:
        app.conf.task_always_eager = eager
    worker = start_worker()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert worker.poll() is None, _logs(start_worker.logs)
        if RefreshRun.objects.filter(tenant=tenant, outcome=RunOutcome.SUCCEEDED).exists():
            break
        time.sleep(1)
    time.sleep(3)  # let the worker take the second message too
    runs = list(RefreshRun.objects.filter(tenant=tenant).values_list("generation", "outcome"))
    assert (old_generation + 1, RunOutcome.SUCCEEDED) in runs, (runs, _logs(start_worker.logs))
    assert [r for r in runs if r[1] == RunOutcome.SUCCEEDED] == [(old_generation + 1, RunOutcome.SUCCEEDED)]
    assert Snapshot.objects.filter(tenant=tenant).count() == 1
    assert ReadinessState.objects.get(tenant=tenant).devices_total == 120
