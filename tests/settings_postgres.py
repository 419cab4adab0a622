"""The same settings on PostgreSQL (the local server, trust authentication)."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        # One test database per run, so that concurrent runs never drop each other's.
        "TEST": {"NAME": f"test_webhooks_{os.getpid()}"},
    }
}
