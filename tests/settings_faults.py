"""The demo project's settings with a short per-socket queue, for real server processes
in the fault tests: a dashboard that stops reading fills it within seconds."""

from __future__ import annotations

from project.settings import *  # noqa: F403

REALTIME_SOCKET_QUEUE_FRAMES = 50
