"""The chaos suite's own promises (scripts/chaos.py; it runs in full with `make chaos`, short in CI)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _chaos():
    spec = importlib.util.spec_from_file_location("chaos", ROOT / "scripts" / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_full_form_kills_the_worker_at_least_20_times_while_sending():
    chaos = _chaos()
    assert chaos.FULL.send_kills >= 20
    assert chaos.FULL.sweep_kills >= 5 and chaos.FULL.crowd_workers >= 3
    assert chaos.SHORT.send_kills >= 5 and chaos.SHORT.crowd_workers >= 2


def test_everything_it_starts_listens_on_loopback_only():
    chaos = _chaos()
    source = (ROOT / "scripts" / "chaos.py").read_text()
    assert "0.0.0.0" not in source
    assert chaos.PORTAL_ENV["EMAIL_HOST"] == "127.0.0.1"
    port = chaos.free_port()
    assert 1024 < port < 65536


def test_make_and_ci_run_it():
    assert "scripts/chaos.py --short" in (ROOT / "Makefile").read_text()
    assert "make chaos-short" in (ROOT / ".ci" / "run").read_text()
    result = subprocess.run([sys.executable, "scripts/chaos.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "--short" in result.stdout
