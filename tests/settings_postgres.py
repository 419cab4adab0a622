"""The same settings on PostgreSQL (the local server, trust authentication)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "TEST": {"NAME": "test_webhooks"},
    }
}
