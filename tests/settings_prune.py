"""The worker settings with a prune round every second, for a real worker process."""

from __future__ import annotations

from tests.settings_workers import *  # noqa: F403

WEBHOOKS_PRUNE_EVERY_SECONDS = 1.0
