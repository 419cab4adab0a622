"""The demo project's settings plus the recording test app, with short leases.

Used by real server and worker processes in end-to-end tests; the database and
the processing mode come from the environment, as in production.
"""

from __future__ import annotations

from project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.workerapp"]  # noqa: F405

WEBHOOKS_LEASE_SECONDS = 3
WEBHOOKS_POLL_SECONDS = 0.5
