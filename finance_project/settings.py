"""Settings for the whole project, read from environment variables.

See the configuration table in README.md. Development runs with ``DEBUG``
on; production (``DEBUG`` off) refuses the development secret key and turns
on the HTTPS protections that ``manage.py check --deploy`` looks for.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from finance_project import env

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.get_bool("DEBUG", default=False)

# Only good enough for a laptop: production refuses it below.
DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env.get_str(
    "SECRET_KEY", default=DEVELOPMENT_SECRET_KEY if DEBUG else None
)
if not DEBUG and (SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY must be a private value of at least 50 characters when DEBUG "
        "is off."
    )

ALLOWED_HOSTS = env.get_list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set ALLOWED_HOSTS when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env.get_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_celery_results",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "labeling",
    "mlcore",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "finance_project.urls"
WSGI_APPLICATION = "finance_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "finance_project" / "templates"],
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

DATABASES = {
    "default": env.parse_database_url("DATABASE_URL", env.get_str("DATABASE_URL")),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.get_int("DATABASE_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The statements of the suggestion endpoint run as server-side prepared
# statements (finance_project/db.py); off for a transaction-mode pooler.
DATABASE_PREPARED_STATEMENTS = env.get_bool("DATABASE_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.get_str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# In development WhiteNoise serves files straight from the apps' static
# folders; production serves the output of collectstatic.
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# HTTPS hardening. Each can be relaxed by environment for a deployment that
# terminates TLS elsewhere and talks plain HTTP to the app (docker compose on
# a laptop, for example).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.get_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.get_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.get_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.get_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.get_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.get_str("LOG_LEVEL", "INFO")},
}

# Celery: Redis broker, JSON only, results in the database so the admin shows
# them. acks_late plus prefetch 1 means a task whose worker dies is handed to
# another worker instead of being lost, so every task must be idempotent.
REDIS_URL = env.validate_redis_url("REDIS_URL", env.get_str("REDIS_URL"))
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A visibility timeout longer than the slowest task, or Redis re-delivers a
# task that is still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.get_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600)
}
CELERY_BEAT_SCHEDULE = {
    "fail-stale-jobs": {
        "task": "mlcore.tasks.fail_stale_jobs_task",
        "schedule": 15 * 60,
    },
    # Does nothing unless SUGGESTIONS_AUTO_APPLY_THRESHOLD is set.
    "auto-apply-suggestions": {
        "task": "mlcore.tasks.auto_apply_suggestions_task",
        "schedule": 60 * 60,
    },
}

# A job still "running" after this long has lost its worker.
JOB_STALE_AFTER_SECONDS = env.get_int("JOB_STALE_AFTER_SECONDS", 6 * 3600)

# Largest file the transaction import accepts, in bytes (50 MB).
IMPORT_MAX_BYTES = env.get_int("IMPORT_MAX_BYTES", 50 * 1024 * 1024)

# Labeling rules whose precision against human labels falls below this share
# are flagged in the admin and the API.
RULE_PRECISION_FLOOR = env.get_fraction("RULE_PRECISION_FLOOR", 0.9)

# Trained models are joblib files here; the database keeps each one's
# SHA-256, checked on every load. Several hosts need a shared directory.
MODEL_STORAGE_DIR = Path(
    env.get_str("MODEL_STORAGE_DIR", str(BASE_DIR / ".data" / "models"))
)
# Training reads at most this many of the most recent labeled rows.
TRAINING_MAX_ROWS = env.get_int("TRAINING_MAX_ROWS", 300_000)
# Share of suggestion traffic served by the challenger model, when one is
# registered; each transaction always lands in the same arm.
SUGGESTIONS_CHALLENGER_SHARE = env.get_fraction("SUGGESTIONS_CHALLENGER_SHARE", 0.1)
# Suggestions at least this confident may be written as rule labels by the
# auto-apply task. Unset: off. Pick it from a training run's threshold table.
SUGGESTIONS_AUTO_APPLY_THRESHOLD = env.get_fraction(
    "SUGGESTIONS_AUTO_APPLY_THRESHOLD", None
)
# How many categories a suggestion lists.
SUGGESTIONS_TOP_K = env.get_int("SUGGESTIONS_TOP_K", 3)
# Seconds a web process trusts its copy of the champion/challenger aliases.
SUGGESTIONS_ALIAS_TTL = env.get_int("SUGGESTIONS_ALIAS_TTL", 5)


# The REST API under /api/ (finance_project.api). Token first: its
# WWW-Authenticate header makes anonymous requests 401s rather than 403s.
# Throttle counters live in the default (per-process) cache.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "finance_project.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "finance_project.api.ApiSchema",
    "EXCEPTION_HANDLER": "finance_project.api.handle_exception",
    "DEFAULT_THROTTLE_RATES": {
        "writes": env.get_rate("API_THROTTLE_WRITES", "120/min"),
        "jobs": env.get_rate("API_THROTTLE_JOBS", "10/min"),
    },
    # Dates and amounts as strings, exactly as stored.
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Finance categorizer API",
    "DESCRIPTION": (
        "Transactions, golden labels, categories, features and background "
        "jobs. Authenticate with a session (browser) or a token header "
        "(`Authorization: Token <key>`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from drf-spectacular-sidecar, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "mlcore.models.JobStatus",
        "LabelSourceEnum": "labeling.models.LabelSource",
    },
}
