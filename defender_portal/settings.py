"""Settings for the Defender Experts portal.

Everything that differs between a laptop and production is read from the
environment (see README "Configuration"). The defaults form the *embedded*
shape used by ``make run``: the embedded PostgreSQL with its data under
``var/postgres`` (``defender_portal/embedded_db.py``) and Kombu's filesystem
broker, so no server needs to be installed.
"""

from __future__ import annotations

import os
from email.utils import parseaddr
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from defender_portal.embedded_db import embedded_url
from defender_portal.env import (
    database_config,
    env_bool,
    env_duration_seconds,
    env_int,
    env_list,
    env_str,
    env_url,
    persistent_secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)

_INSECURE_DEV_KEY = "django-insecure-dev-only-key-change-me-in-production-0123456789abcdef"
if "SECRET_KEY" not in os.environ:
    # Unset: a key generated once under var/ (deployments set their own).
    SECRET_KEY = _INSECURE_DEV_KEY if DEBUG else persistent_secret_key(VAR_DIR / "secret_key")
else:
    SECRET_KEY = env_str("SECRET_KEY", _INSECURE_DEV_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off: give it a long random value, or unset it to use a key "
        "generated under var/."
    )
if len(SECRET_KEY) < 50 and not DEBUG:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long.")

# Loopback only unless told otherwise: safe, and enough for `make run`.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the portal's host names when DEBUG is off.")

# Public base URL used in emails (welcome links, reminders).
PORTAL_BASE_URL = env_url("PORTAL_BASE_URL", "http://127.0.0.1:8000", schemes={"http", "https"}).rstrip("/")

INSTALLED_APPS = [
    "defender_portal.apps.OperatorAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "axes",
    "csp",
    # Sign-in (with a second factor) and the list of signed-in sessions.
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    # The tenancy core, the audit trail and the outbox come first: every
    # feature app depends on them.
    "tenancy",
    "audit",
    "outbox",
    "environment",
    # Exclusions sit between the environment and the permissions evaluator, which asks them.
    "exclusions",
    "onboarding",
    "permissions",
    "contacts",
    "readiness",
    # The portal shell (icons, theme and navigation preferences); imports no feature app.
    "ui",
    # Demo data (seed_demo): on top of every app above, imported by none of them.
    "demo",
]

MIDDLEWARE = [
    # Health checks first: no cookie or header can make an outage answer 500.
    "defender_portal.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Compresses HTML (static files come pre-compressed from WhiteNoise). Django's GZipMiddleware pads each response
    # with random bytes against BREACH, and the CSRF token is masked per response, so compressing pages that carry
    # secrets is safe here.
    "django.middleware.gzip.GZipMiddleware",
    # Text the database can't take (NUL, broken UTF-8) is refused before anything reads it.
    "defender_portal.input_guard.InputGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Idle timeout and absolute age; records each session's IP, device and
    # last activity ("Signed-in sessions") at most once a minute.
    "tenancy.sessions.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tenancy.middleware.TenantMiddleware",
    # Who must have a second factor and has none goes to the guided enrolment.
    "tenancy.mfa.MFAEnrolmentMiddleware",
    # The request context for the audit trail; ApplicationError -> response (core.errors).
    "core.middleware.WebCoreMiddleware",
    # Axes must be last so it sees the authentication outcome.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "defender_portal.urls"
WSGI_APPLICATION = "defender_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "tenancy.context_processors.portal",
                "ui.context_processors.shell",
            ],
        },
    }
]

# Unset: the embedded PostgreSQL that `make run` starts (a Unix socket under var/).
DATABASES = {"default": database_config("DATABASE_URL", embedded_url(VAR_DIR / "postgres"))}
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", "")} if env_str("TEST_DATABASE_NAME", "") else {}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "tenancy.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Sign-in: django-allauth with multi-factor authentication ---------------------------
# Email and password, then an authenticator app code, a recovery code or a
# passkey (WebAuthn). Sign-up is closed: operators create accounts.
ACCOUNT_ADAPTER = "tenancy.mfa.AccountAdapter"
MFA_ADAPTER = "tenancy.mfa.MFAAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_GET = False
# django-axes throttles every factor (see tenancy/mfa.py), so allauth's own limits stay off.
ACCOUNT_RATE_LIMITS = False
ACCOUNT_REAUTHENTICATION_TIMEOUT = 15 * 60
ACCOUNT_FORMS = {"login": "tenancy.forms.SignInForm"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_FORMS = {
    "authenticate": "tenancy.mfa.AuthenticateForm",
    "reauthenticate": "tenancy.mfa.ReauthenticateForm",
    "edit_webauthn": "tenancy.mfa.EditWebAuthnForm",
    "authenticate_webauthn": "tenancy.mfa.AuthenticateWebAuthnForm",
    "reauthenticate_webauthn": "tenancy.mfa.ReauthenticateWebAuthnForm",
}
# One 30-second step either side: phones' clocks drift.
MFA_TOTP_TOLERANCE = 1
MFA_PASSKEY_LOGIN_ENABLED = False
# WebAuthn needs HTTPS, except on a developer's or the test suite's plain-HTTP localhost.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG or env_bool("PORTAL_TESTING", False)
USERSESSIONS_TRACK_ACTIVITY = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: lock the (username, IP) pair after repeated failures.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_duration_seconds("AXES_COOLOFF", 15 * 60) / 3600  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "login"
AXES_USERNAME_CALLABLE = "tenancy.mfa.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or env_bool("PORTAL_TESTING", False)
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG or env_bool("PORTAL_TESTING", False)

# --- Security -----------------------------------------------------------------
# Production defaults are strict; each can be relaxed explicitly, e.g. behind a
# TLS-terminating proxy or on a developer laptop (DEBUG=1 relaxes them all).
_SECURE_DEFAULT = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _SECURE_DEFAULT)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _SECURE_DEFAULT)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _SECURE_DEFAULT)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if _SECURE_DEFAULT else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many reverse proxies we run in front of the portal; their X-Forwarded-For
# entries give the client's address for the audit trail. 0 trusts none.
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0, minimum=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Container health checks probe over plain HTTP from inside the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz/$", r"^readyz/$"]
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_duration_seconds("SESSION_COOKIE_AGE", 8 * 3600)
# A signed-in session ends after this long without a request, and at the latest
# SESSION_ABSOLUTE_AGE after sign-in, however active it is.
SESSION_IDLE_TIMEOUT = env_duration_seconds("SESSION_IDLE_TIMEOUT", 3600)
SESSION_ABSOLUTE_AGE = env_duration_seconds("SESSION_ABSOLUTE_AGE", SESSION_COOKIE_AGE)
# A session's last activity (Signed-in sessions, the idle timeout) is written at most this often.
SESSION_ACTIVITY_RESOLUTION = env_duration_seconds("SESSION_ACTIVITY_RESOLUTION", 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads no cookie; the token travels in hx-headers.

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Email ----------------------------------------------------------------------
# Embedded default: messages are written to var/mail as .eml files, readable
# without an SMTP server (the provider's Outbox page shows them too).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Microsoft Defender Experts <defenderexperts@experts.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Cache (rate limits) ----------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    env_url("REDIS_URL", REDIS_URL, schemes={"redis", "rediss"})
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "portal_cache",
        }
    }

# --- Celery -----------------------------------------------------------------------
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", "filesystem://", schemes={"filesystem", "redis", "rediss", "memory"})
if CELERY_BROKER_URL.startswith("filesystem://"):
    (_BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    (_BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        # Broadcast/pidbox messages (e.g. `celery inspect`), kept under var/ too.
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Tasks here never wait long in the broker (no long countdowns), so a short
    # visibility timeout just means a crashed worker's task comes back quickly.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=60)}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic sweeps. Each sweep is cheap and idempotent; the due times of the
# real work live in the database, never in broker countdowns.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "outbox-dispatch": {"task": "outbox.dispatch_due", "schedule": env_int("OUTBOX_SWEEP_SECONDS", 30, minimum=5)},
    # Ends access grants at their end date and queues the 7-day expiry reminders.
    "permissions-access-sweep": {
        "task": "permissions.sweep_access_grants",
        "schedule": env_int("PERMISSIONS_SWEEP_SECONDS", 300, minimum=30),
    },
    # Readiness: claims the tenants whose refresh is due and enqueues one refresh each.
    "readiness-sweep": {"task": "readiness.sweep", "schedule": env_int("READINESS_SWEEP_SECONDS", 60, minimum=5)},
}

# Outbox: how long a claim on a message lasts before another worker may retry it.
OUTBOX_CLAIM_TIMEOUT = env_duration_seconds("OUTBOX_CLAIM_TIMEOUT", 300)
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 8, minimum=1)
# The right-hand side of every email's Message-ID (<outbox.ROW.CREATED@DOMAIN>):
# by default the domain of DEFAULT_FROM_EMAIL.
OUTBOX_MESSAGE_ID_DOMAIN = env_str(
    "OUTBOX_MESSAGE_ID_DOMAIN", parseaddr(DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
)

# Readiness assessment. Like the real service, a change in the environment only
# shows on Service status once a refresh picks it up: within a per-tenant,
# jittered delay between READINESS_MIN_DELAY and READINESS_MAX_DELAY (24 hours
# by default; e.g. READINESS_MIN_DELAY=20s READINESS_MAX_DELAY=60s for a demo).
READINESS_MAX_DELAY = env_duration_seconds("READINESS_MAX_DELAY", 24 * 3600)
READINESS_MIN_DELAY = min(env_duration_seconds("READINESS_MIN_DELAY", 3600), READINESS_MAX_DELAY)
# Every tenant is refreshed at least this often, even without changes.
READINESS_REFRESH_INTERVAL = env_duration_seconds("READINESS_REFRESH_INTERVAL", 24 * 3600)
# "Request refresh": runs within this (randomised) delay, at most once per rate-limit window.
READINESS_REQUEST_DELAY = env_duration_seconds("READINESS_REQUEST_DELAY", 15 * 60)
READINESS_REQUEST_RATE_LIMIT = env_duration_seconds("READINESS_REQUEST_RATE_LIMIT", 15 * 60)
# A claimed refresh not finished within the lease is reclaimed (worker died, broker lost it).
READINESS_LEASE = env_duration_seconds("READINESS_LEASE", 10 * 60)
# How many tenants one sweep claims at most.
READINESS_SWEEP_BATCH = env_int("READINESS_SWEEP_BATCH", 20000, minimum=1)
# The sweep claims and enqueues this many tenants at a time. A claim lasts only
# READINESS_ENQUEUE_LEASE until its task is with the broker, so a crash or a
# broker failure during the enqueue delays those tenants by about a minute,
# not a whole READINESS_LEASE.
READINESS_CLAIM_CHUNK = env_int("READINESS_CLAIM_CHUNK", 500, minimum=1)
READINESS_ENQUEUE_LEASE = min(env_duration_seconds("READINESS_ENQUEUE_LEASE", 60), READINESS_LEASE)
# How long the monitoring phase lasts before the SDM can confirm the service Active.
READINESS_MONITORING_DAYS = env_int("READINESS_MONITORING_DAYS", 7, minimum=0)
# The share of a tenant's devices (in percent) the experts must be able to reach for readiness, and so
# for access health to be Active: below it the health is "Limited reach", at none it is an error.
READINESS_REQUIRED_REACH = min(env_int("READINESS_REQUIRED_REACH", 100, minimum=1), 100)

# Welcome email links (Get started) stay valid this long.
ONBOARDING_LINK_MAX_AGE = env_duration_seconds("ONBOARDING_LINK_MAX_AGE", 14 * 24 * 3600)

# --- Demo -----------------------------------------------------------------------------
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "Defender-Demo-2026!")
# The demo users' authenticator app key (base32): add it to any TOTP app, or
# run `manage.py demo_code` for the current code. Never used outside the demo.
DEMO_TOTP_SECRET = env_str("DEMO_TOTP_SECRET", "DEFENDEREXPERTSPORTALDEMOTOTPKEY")

# --- Logging ------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "portal": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
        "django.request": {"handlers": ["console"], "level": "WARNING"},
    },
}
