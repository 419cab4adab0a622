"""The public face of the lean ASGI front door: ``deliveries_first`` wraps a project's ASGI
application (see the README's ``asgi.py``); the door itself lives in :mod:`webhooks.ingest.asgi`."""

from __future__ import annotations

from webhooks.ingest.asgi import deliveries_first

__all__ = ["deliveries_first"]
