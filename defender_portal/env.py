"""Typed access to configuration taken from the process environment.

Every reader raises ``ImproperlyConfigured`` naming the variable, so a bad
value stops start-up with a message an operator can act on instead of a
traceback from deep inside Django or Celery.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def persistent_secret_key(path: Path) -> str:
    """A random key generated once and kept in ``path`` (mode 0600).

    Lets a checkout run with real, non-debug settings without anyone choosing
    a key; web, worker and beat started together all read the same file
    (O_EXCL makes exactly one of them create it). Deployments set SECRET_KEY.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
    key = path.read_text().strip()
    if len(key) < 50:
        raise ImproperlyConfigured(f"SECRET_KEY: the generated key in {path} is damaged; delete the file.")
    return key


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (one of 1/0, true/false, yes/no, on/off); got {value!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        parsed = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {value!r}.") from None
    if minimum is not None and parsed < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {parsed}.")
    return parsed


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str, *, schemes: set[str]) -> str:
    value = env_str(name, default)
    parsed = urlparse(value)
    if parsed.scheme not in schemes:
        allowed = ", ".join(sorted(f"{s}://" for s in schemes))
        raise ImproperlyConfigured(f"{name} must start with one of {allowed}; got {value!r}.")
    return value


def env_duration_seconds(name: str, default: int) -> int:
    """Seconds, optionally with a unit suffix: ``90``, ``90s``, ``5m``, ``24h``, ``2d``."""
    value = _raw(name)
    if value is None or value == "":
        return default
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (value[:-1], value[-1]) if value[-1].lower() in units else (value, "s")
    try:
        seconds = int(float(number) * units[unit.lower()])
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be a duration such as 90, 90s, 5m, 24h or 2d; got {value!r}."
        ) from None
    if seconds <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive duration; got {value!r}.")
    return seconds


def database_config(name: str, default: str) -> dict[str, object]:
    """Turn ``DATABASE_URL`` into a Django ``DATABASES['default']`` entry.

    ``postgres://user:pass@host:5432/db``, or a Unix socket directory as the
    ``host`` parameter (``postgres://user@/db?host=/path/to/dir``), which is
    how the embedded server (``defender_portal.embedded_db``) is reached.
    """
    url = env_url(name, default, schemes={"postgres", "postgresql"})
    parsed = urlparse(url)
    if not parsed.path.strip("/"):
        raise ImproperlyConfigured(f"{name} must name a database, e.g. postgres://user@host:5432/portal.")
    try:
        port = parsed.port or 5432
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port; got {url!r}.") from None
    socket_dir = parse_qs(parsed.query).get("host", [""])[0]
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": socket_dir or parsed.hostname or "",
        "PORT": str(port),
        # Persistent connections: opening one per request halves throughput
        # on these machines; health checks drop a connection the server closed.
        "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 600, minimum=0),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5},
    }


def database_url(settings_dict: dict[str, object]) -> str:
    """The ``DATABASE_URL`` of a ``DATABASES`` entry: what a child process (a Celery worker) is given."""
    user = quote(str(settings_dict.get("USER") or ""), safe="")
    password = quote(str(settings_dict.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = str(settings_dict.get("HOST") or "127.0.0.1")
    port = settings_dict.get("PORT") or 5432
    name = quote(str(settings_dict["NAME"]), safe="")
    if host.startswith("/"):
        return f"postgres://{auth}/{name}?host={quote(host, safe='/')}"
    return f"postgres://{auth}{host}:{port}/{name}"
