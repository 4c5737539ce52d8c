"""Settings for LeadOps escalation. Everything configurable comes from the environment
(see `.env.example`); a malformed value stops start-up with a message naming it."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from leadops.config import (
    env_bool,
    env_database,
    env_email,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
environ.Env.read_env(BASE_DIR / ".env")  # optional; real environment variables win

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
    SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_url("SITE_URL", "http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_q",
    "teams",
    "leadops",
    "escalations",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "leadops.admin_kit.ViewerZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "leadops.urls"
WSGI_APPLICATION = "leadops.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Django's SQLite backend, whose flush lifts the audit log's append-only triggers.
    DATABASES["default"]["ENGINE"] = "audit.sqlite_backend"
    # WAL + immediate transactions: the web process and the qcluster share one file without
    # "database is locked" on lock upgrades.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Django's PostgreSQL backend, whose single-row INSERTs are built once (leadops/db).
        DATABASES["default"]["ENGINE"] = "leadops.db.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    # Parameters travel beside the statement (server-side binding) instead of being quoted into
    # it by psycopg in Python: about a quarter of the API's CPU per lead created.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env_bool(
        "DATABASE_SERVER_SIDE_BINDING", True
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
LOGIN_URL = "/admin/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- REST API (escalations/api) -------------------------------------------------------------------
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1_048_576, minimum=1024)  # larger: 413
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 100, minimum=1)
API_THROTTLE_RATES = {
    "read": env_rate("API_THROTTLE_READ_RATE", "1200/min"),
    "write": env_rate("API_THROTTLE_WRITE_RATE", "600/min"),
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "escalations.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["escalations.api.throttling.TokenRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["escalations.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "escalations.api.negotiation.JsonFirstNegotiation",
    "EXCEPTION_HANDLER": "escalations.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LeadOps escalation API",
    "VERSION": "1",
    "DESCRIPTION": (
        "Feed leads in from a CRM, web form or dialer, and read the escalation log back.\n\n"
        "**Authentication**: `Authorization: Token <key>` (tokens are issued in the admin, "
        "under Auth Token → Tokens) or the admin's session.\n\n"
        "**Errors** all have one shape: "
        '`{"error": {"code": "invalid", "message": "...", "fields": {"name": ["..."]}}}`; '
        "`fields` (on 400) names each bad field.\n\n"
        "**Lists** are newest first with keyset cursors: follow `next` until it is null."
    ),
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999}
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "escalations.api.schema.add_response_headers",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "LeadStateEnum": "leadops.models.LeadState",
        "ActivityKindEnum": "leadops.models.ActivityKind",
        "AuditKindEnum": "audit.models.AuditKind",
        "MessageKindEnum": "escalations.models.MessageKind",
        "NotificationStatusEnum": "escalations.models.NotificationStatus",
        "PersonaEnum": "escalations.models.Persona",
        "ReassignmentCauseEnum": "escalations.models.ReassignmentCause",
        "ClockEnum": "escalations.models.Clock",
        "StageEnum": "escalations.models.Stage",
        "SlaStatusEnum": "escalations.explain.STATUS_CHOICES",
    },
}

# The API's throttle counts (and any other cache use) live here. With Redis (REDIS_URL) the
# count is shared by every web process; without it, in this process's memory: the embedded
# setup runs one web process on SQLite, where a database cache would add a write to the one
# SQLite writer on every API request.
if env_str("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix")),
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "leadops"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Task queue and scheduler (django-q2) ---------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
Q_TIMEOUT = env_int("Q_TIMEOUT", 300, minimum=10)
Q_RETRY = env_int("Q_RETRY", 360, minimum=11)
if Q_RETRY <= Q_TIMEOUT:
    raise ImproperlyConfigured(f"Q_RETRY={Q_RETRY} must be greater than Q_TIMEOUT={Q_TIMEOUT}")
Q_CLUSTER = {
    "name": env_str("Q_NAME", "leadops"),
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 3, minimum=1),
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "sync": env_bool("Q_SYNC", False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Escalation ----------------------------------------------------------------------------------
SWEEP_INTERVAL_MINUTES = env_int("SWEEP_INTERVAL_MINUTES", 1, minimum=1)
SWEEP_BATCH_SIZE = env_int("SWEEP_BATCH_SIZE", 500, minimum=1)
SWEEP_MAX_BATCHES = env_int("SWEEP_MAX_BATCHES", 200, minimum=1)
SWEEP_ERROR_BACKOFF_MINUTES = env_int("SWEEP_ERROR_BACKOFF_MINUTES", 15, minimum=1)
REASSIGN_LIMIT_PER_STATE = env_int("REASSIGN_LIMIT_PER_STATE", 2, minimum=0)
SIGNED_LINK_MAX_AGE_HOURS = env_int("SIGNED_LINK_MAX_AGE_HOURS", 72, minimum=1)
# Calibration findings (SPEC §11): a rate at or above its threshold, over at least the minimum
# number of timers (or stage messages), becomes a finding.
CALIBRATION_MIN_TIMERS = env_int("CALIBRATION_MIN_TIMERS", 20, minimum=1)
CALIBRATION_BREACH_RATE_PERCENT = env_int("CALIBRATION_BREACH_RATE_PERCENT", 25, minimum=1)
CALIBRATION_REASSIGN_RATE_PERCENT = env_int("CALIBRATION_REASSIGN_RATE_PERCENT", 15, minimum=1)
CALIBRATION_IGNORED_RATE_PERCENT = env_int("CALIBRATION_IGNORED_RATE_PERCENT", 50, minimum=1)
CALIBRATION_MIN_MESSAGES = env_int("CALIBRATION_MIN_MESSAGES", 20, minimum=1)
ORG_FILE_MAX_BYTES = env_int("ORG_FILE_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)  # SPEC §13

# --- Notifications (empty = channel off; with nothing configured messages go to the log) ---------
SLACK_BOT_TOKEN = env_str("SLACK_BOT_TOKEN")
SLACK_SIGNING_SECRET = env_str("SLACK_SIGNING_SECRET")
SLACK_API_URL = env_url("SLACK_API_URL", "https://slack.com/api/")
if SLACK_BOT_TOKEN and not SLACK_SIGNING_SECRET:
    raise ImproperlyConfigured(
        "SLACK_SIGNING_SECRET must be set when SLACK_BOT_TOKEN is: it verifies the requests "
        "Slack sends to /slack/events (Slack app > Basic Information > Signing Secret)"
    )
TEAMS_ENABLED = env_bool("TEAMS_ENABLED", True)  # a team's webhook URL switches Teams on for it
EMAIL_CONFIG = env_email("EMAIL_URL")
EMAIL_ENABLED = bool(EMAIL_CONFIG)
if EMAIL_CONFIG:
    vars().update(EMAIL_CONFIG)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "leadops@localhost")
NOTIFY_BATCH_SIZE = env_int("NOTIFY_BATCH_SIZE", 200, minimum=1)
# Sends in flight at once, across destinations (one destination's messages go one at a time).
NOTIFY_CONCURRENCY = env_int("NOTIFY_CONCURRENCY", 32, minimum=1)
# The pace per destination (Slack: about one message a second per channel, short bursts).
NOTIFY_RATE_PER_SECOND = env_float("NOTIFY_RATE_PER_SECOND", 1.0, minimum=0.0)
NOTIFY_RATE_BURST = env_int("NOTIFY_RATE_BURST", 4, minimum=1)
NOTIFY_LEASE_SECONDS = env_int("NOTIFY_LEASE_SECONDS", 120, minimum=5)
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 8, minimum=1)
NOTIFY_BACKOFF_BASE_SECONDS = env_int("NOTIFY_BACKOFF_BASE_SECONDS", 30, minimum=1)
NOTIFY_BACKOFF_CAP_SECONDS = env_int("NOTIFY_BACKOFF_CAP_SECONDS", 3600, minimum=1)
