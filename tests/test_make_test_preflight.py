"""`make test` stops with a clear message naming what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_unreachable_services_are_named(tmp_path):
    env = {
        **os.environ,
        "VENV": sys.prefix,
        "DATABASE_URL": "postgres://root@127.0.0.1:1/nowhere",
        "REDIS_URL": "redis://127.0.0.1:2/0",
        "CELERY_BROKER_URL": "redis://127.0.0.1:3/0",
        "PORTAL_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(["bash", "scripts/test.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "make test cannot run" in result.stderr
    # No PostgreSQL is not fatal (the embedded one would be used), but it is named.
    assert "No PostgreSQL answers at 127.0.0.1:1 (DATABASE_URL)" in result.stderr
    assert "embedded PostgreSQL" in result.stderr
    assert "Redis at 127.0.0.1:2 (REDIS_URL) is unreachable" in result.stderr
    assert "Redis at 127.0.0.1:3 (CELERY_BROKER_URL) is unreachable" in result.stderr
    assert "passed" not in result.stdout  # pytest never started
    assert not (tmp_path / "postgres-test").exists()  # nor the embedded server: Redis was missing
