"""Settings for the test suite: production settings, read from the environment,
with test-friendly defaults filled in *before* they are read.

The suite runs against real PostgreSQL and Redis (``make test`` checks both
are reachable). Override ``DATABASE_URL`` / ``REDIS_URL`` to point elsewhere.
"""

import os

_DEFAULTS = {
    "DEBUG": "0",
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    # Browser tests talk to the live server over plain HTTP.
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "SECURE_HSTS_SECONDS": "0",
    "DATABASE_URL": "postgres://root@127.0.0.1:5432/defender_portal",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    # Most tests run tasks inline; the worker tests start a real worker.
    "CELERY_TASK_ALWAYS_EAGER": "1",
    "PORTAL_TESTING": "1",
    "PORTAL_VAR_DIR": "/tmp/defender-portal-test-var",
}
for _name, _value in _DEFAULTS.items():
    os.environ.setdefault(_name, _value)

from defender_portal.settings import *  # noqa: E402,F403

# Fast hashing: password strength is not what these tests measure.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Query-count tests measure pages, not the once-a-minute "last activity" write, which
# a slow set-up would otherwise land in a measured request; tests/test_mfa_and_sessions.py
# covers that write with its own setting.
SESSION_ACTIVITY_RESOLUTION = 24 * 3600

# Templates only the tests render (tests/test_core.py).
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "tests" / "templates"]  # noqa: F405
# Parallel runs against other test databases share the Redis database: keep their keys
# (for example allauth's "this authenticator code was used") apart.
CACHES["default"]["KEY_PREFIX"] = os.environ.get("TEST_DATABASE_NAME", "")  # noqa: F405
