"""The demo project's settings plus the recording test app, with short leases.

Used by real server and worker processes in end-to-end tests; the database and
the processing mode come from the environment, as in production. In the task
modes: django-tasks-db's database backend (tasks), or a Celery app on the Redis
at CELERY_BROKER_URL, consuming WEBHOOKS_CELERY_QUEUE (celery).
"""

from __future__ import annotations

import os
from importlib.util import find_spec

from project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.workerapp"]  # noqa: F405

WEBHOOKS_LEASE_SECONDS = 3
WEBHOOKS_POLL_SECONDS = float(os.environ.get("WEBHOOKS_POLL_SECONDS", "0.5"))
WEBHOOKS_RETRY_BASE_SECONDS = 0.2
WEBHOOKS_RETRY_MAX_SECONDS = 1.0
WEBHOOKS_SWEEP_AFTER_SECONDS = 1.0

if WEBHOOKS_PROCESSING == "tasks":  # noqa: F405
    if not find_spec("django.tasks"):
        INSTALLED_APPS += ["django_tasks"]
    INSTALLED_APPS += ["django_tasks_db"]
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

if WEBHOOKS_PROCESSING == "celery":  # noqa: F405
    CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
    CELERY_TASK_DEFAULT_QUEUE = os.environ["WEBHOOKS_CELERY_QUEUE"]
    CELERY_TASK_IGNORE_RESULT = True
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
