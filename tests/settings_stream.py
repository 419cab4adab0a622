"""The demo project's settings, with the event stream's timers chosen by the test.

No polling: between heartbeats only news through the channel layer wakes a
stream, so a test passes only if the fan-out works.
"""

from __future__ import annotations

import os

from project.settings import *  # noqa: F403

WEBHOOKS_STREAM_HEARTBEAT_SECONDS = float(
    os.environ.get("TEST_STREAM_HEARTBEAT_SECONDS", "3600")
)
WEBHOOKS_STREAM_POLL_SECONDS = 3600.0
