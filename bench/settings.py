"""The demo project's settings plus the no-op handler app, for the benchmarks."""

from __future__ import annotations

from project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench.noop"]  # noqa: F405
