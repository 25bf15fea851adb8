"""The access-grant sweep through a real Celery worker, against Redis and the test database.

Everything else about the sweep is tested in-process with a frozen clock
(tests/test_permissions_services.py). This checks the one thing those can't:
that the task is registered under the name beat schedules, travels through
the real broker as JSON, runs in a worker process with its own database
connection, commits, and that two copies delivered at once (two pool
processes, so they really overlap and SKIP LOCKED decides who does what)
still end each grant and queue each reminder exactly once, and that the
reminder then leaves through the outbox. The worker runs on the real
clock, so the grants are put in the past with plain UPDATEs.

Beat itself is not started: the sweep's schedule has a 30-second floor
(PERMISSIONS_SWEEP_SECONDS), too slow for a test of a few seconds; the test
checks that the schedule names this task instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from defender_portal.env import database_url
from outbox.models import MessageStatus, OutboxMessage
from permissions.models import AccessGrant, RevokedReason
from permissions.selectors import access_levels_state
from permissions.services import access_levels_set

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
TASK = "permissions.sweep_access_grants"


def _purge() -> None:
    from defender_portal.celery import app

    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)


@pytest.fixture
def worker() -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A real worker (two processes, so two deliveries can race), stopped by its own process group."""
    _purge()
    log = Path(tempfile.mkdtemp(prefix="permissions-worker-")) / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DB_CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "defender_portal",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname=permissions-e2e@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        _purge()


def _grant(tenant, user, *, respond: bool) -> None:
    access_levels_set(
        tenant=tenant,
        acting_user=user,
        investigate=True,
        respond=respond,
        expected_version=access_levels_state(tenant=tenant).version,
        recently_authenticated=True,
    )


def test_a_real_worker_ends_due_grants_and_reminds_once(worker, contoso, fabrikam, admin, outsider) -> None:
    from defender_portal.celery import app

    proc, log = worker
    assert TASK in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    now = timezone.now()
    # Contoso: both levels reached their end a minute ago. Fabrikam: five days left, so a reminder is due.
    _grant(contoso, admin, respond=True)
    AccessGrant.objects.filter(tenant=contoso).update(
        starts_at=now - timedelta(days=30), ends_at=now - timedelta(minutes=1)
    )
    _grant(fabrikam, outsider, respond=False)
    AccessGrant.objects.filter(tenant=fabrikam).update(ends_at=now + timedelta(days=5))
    version = access_levels_state(tenant=contoso).version

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # through the real broker, as beat sends it
    try:
        # Two copies at once: a retried or overlapping delivery must not act twice.
        app.send_task(TASK)
        app.send_task(TASK)
    finally:
        app.conf.task_always_eager = eager

    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
        done = log.read_text(errors="replace").count(f"Task {TASK}[") >= 4  # received + succeeded, twice
        sent = OutboxMessage.objects.filter(kind="permissions.expiry_reminder", status=MessageStatus.SENT).exists()
        if done and sent and not AccessGrant.objects.filter(tenant=contoso, revoked_at__isnull=True).exists():
            break
        time.sleep(0.5)
    text = log.read_text(errors="replace")
    assert text.count("succeeded in") >= 2, text[-4000:]

    grants = list(AccessGrant.objects.filter(tenant=contoso))
    assert len(grants) == 2 and all(g.revoked_reason == RevokedReason.EXPIRED for g in grants), text[-4000:]
    expired = AuditEvent.objects.filter(tenant=contoso, action="permissions.level_expired")
    assert expired.count() == 2 and set(expired.values_list("actor_label", flat=True)) == {"system"}
    assert access_levels_state(tenant=contoso).version == version + 1
    assert not access_levels_state(tenant=contoso).any_level

    # One reminder, queued in the sweep's transaction and delivered by the same worker.
    reminder = OutboxMessage.objects.get(kind="permissions.expiry_reminder", tenant=fabrikam)
    assert reminder.status == MessageStatus.SENT, text[-4000:]
    assert reminder.to == ["admin@fabrikam.example"] and "5 days" in reminder.subject
    assert AccessGrant.objects.get(tenant=fabrikam).reminder_sent_at is not None
    assert AuditEvent.objects.filter(tenant=fabrikam, action="permissions.expiry_reminder_queued").count() == 1
