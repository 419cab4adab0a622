"""The worker settings with the scrape URL, for real server and worker processes."""

from __future__ import annotations

from tests.settings_workers import *  # noqa: F403

ROOT_URLCONF = "tests.urls_metrics"
