"""The demo project's settings plus the no-op handler app, for the benchmarks."""

from __future__ import annotations

from importlib.util import find_spec

from project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench.noop"]  # noqa: F405

if WEBHOOKS_PROCESSING == "tasks":  # noqa: F405
    # django-tasks-db's database backend and its db_worker (bench/workers.py, latency.py).
    if not find_spec("django.tasks"):
        INSTALLED_APPS += ["django_tasks"]
    INSTALLED_APPS += ["django_tasks_db"]
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
