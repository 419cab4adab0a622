"""The Celery app of the celery-mode tests, set up as a project sets up its own:
configured from Django settings (``CELERY_*``), its tasks found in installed apps."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_workers")

app = Celery("workerapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
