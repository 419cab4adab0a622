"""Settings of the demo project: the only module that reads the environment."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = os.environ.get("DJANGO_DEBUG", "1") != "0"


def _flag(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0") == "1"


def _secret_key() -> str:
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG=0.")
    # Demo mode: one random key per checkout, kept out of version control.
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get(
        "DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]"
    ).split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "daphne",  # before staticfiles, so that runserver serves ASGI (HTTP and WebSocket)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "webhooks",
    "orders",
    "realtime",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "project.csp.content_security_policy",
]

ROOT_URLCONF = "project.urls"

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

ASGI_APPLICATION = "project.asgi.application"


def _database() -> dict[str, object]:
    url = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    database: dict[str, object] = dict(dj_database_url.parse(url))
    options = dict(database.get("OPTIONS") or {})  # type: ignore[call-overload]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the dashboard read while a delivery writes; IMMEDIATE takes the
        # write lock up front instead of failing mid-transaction under contention.
        options.setdefault(
            "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        )
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 20)
    elif database["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI each request runs its database work on a fresh thread, so
        # persistent per-thread connections would pile up; a pool reuses them.
        # A short pool timeout turns an unreachable database into a prompt 503
        # rather than a delivery held open until the provider gives up.
        options.setdefault("pool", {"min_size": 2, "max_size": 16, "timeout": 5})
        database["CONN_MAX_AGE"] = 0
    database["OPTIONS"] = options
    return database


DATABASES = {"default": _database()}

if redis_url := os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # The layer's receive blocks in Redis for up to 5 s (BZPOPMIN); redis-py's
            # default 5 s socket timeout would race that reply on an idle layer and
            # drop a message Redis has already popped. Longer than the block, still
            # bounded, so a Redis that stops answering is noticed.
            "CONFIG": {
                "hosts": [{"address": redis_url, "socket_timeout": 15}],
                # Each server process's hub is the one reader of all dashboard
                # messages; at the default 100, a burst while it is busy overflows
                # its channel and Redis drops status changes no page would notice.
                "capacity": 1000,
            },
        }
    }
    # Shared by every process: rate limits hold across them (webhooks.ingest.ratelimit).
    # Short timeouts: a slow Redis delays only the background sync, never a delivery.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

WEBHOOKS_PROCESSING = os.environ.get("WEBHOOKS_PROCESSING", "inline")

# make run's demo (orders/management/commands/): "0" starts the server without the
# demo sender that posts sample deliveries every few seconds.
WEBHOOKS_DEMO = os.environ.get("WEBHOOKS_DEMO", "1") != "0"

# The https:// origin providers reach this server at (a tunnel's or a proxy's): shown in
# endpoint URLs, and the URL Twilio signs. Unset: http://127.0.0.1:8000 is shown.
WEBHOOKS_PUBLIC_URL = os.environ.get("WEBHOOKS_PUBLIC_URL", "")

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The terminal of make run: one line per record, tracebacks only on the event pages.
# DJANGO_LOG_LEVEL=INFO adds each rejected delivery; DJANGO_ACCESS_LOG=1 the
# server's line per request (off by default: the demo sender prints one per delivery).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"one_line": {"()": "project.console.OneLineFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "one_line"}
    },
    "loggers": {
        "webhooks": {
            "handlers": ["console"],
            "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING"),
            "propagate": False,
        },
        "realtime": {
            "handlers": ["console"],
            "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING"),
            "propagate": False,
        },
        "django.channels.server": {
            "level": "INFO" if _flag("DJANGO_ACCESS_LOG", False) else "ERROR"
        },
    },
}


# Production (DJANGO_DEBUG=0): HTTPS only, behind a TLS-terminating proxy. Each
# default below follows DEBUG and can be overridden; README "Production" lists them
# and `manage.py check --deploy` passes with them.
SECURE_SSL_REDIRECT = _flag("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# The health check answers over plain HTTP too, for load balancers that probe it so.
SECURE_REDIRECT_EXEMPT = [r"^webhooks/health/$"]
SECURE_HSTS_SECONDS = int(
    os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000")
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG
)
SECURE_HSTS_PRELOAD = _flag("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = _flag("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
# Only behind a proxy that sets X-Forwarded-Proto itself (and drops any a client
# sent); without one, a client could claim HTTPS.
if _flag("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Earlier secret keys, comma-separated, still accepted for sessions while a new one
# takes over (README "Production": rotation).
SECRET_KEY_FALLBACKS = [
    key.strip()
    for key in os.environ.get("DJANGO_SECRET_KEY_FALLBACKS", "").split(",")
    if key.strip()
]
# https:// origins allowed to POST the admin's forms, e.g. "https://hooks.example.com".
CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]
