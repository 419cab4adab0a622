"""System checks for serving the live dashboard over ASGI."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"


@register()
def check_asgi(**kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not getattr(settings, "ASGI_APPLICATION", None):
        messages.append(
            Error(
                "ASGI_APPLICATION is not set, so nothing serves the dashboard's WebSocket.",
                hint='Set ASGI_APPLICATION = "<project>.asgi.application" and route '
                "realtime.routing.websocket_urlpatterns there (see the README).",
                id="realtime.E001",
            )
        )
    apps = list(settings.INSTALLED_APPS)
    if "daphne" not in apps:
        messages.append(
            Warning(
                '"daphne" is not in INSTALLED_APPS, so "manage.py runserver" serves WSGI '
                "and the dashboard's WebSocket does not connect.",
                hint='Add "daphne" to INSTALLED_APPS before "django.contrib.staticfiles", or '
                "serve the project with an ASGI server.",
                id="realtime.W001",
            )
        )
    elif "django.contrib.staticfiles" in apps and apps.index("daphne") > apps.index(
        "django.contrib.staticfiles"
    ):
        messages.append(
            Error(
                '"daphne" comes after "django.contrib.staticfiles" in INSTALLED_APPS, so '
                '"manage.py runserver" is staticfiles\' WSGI server.',
                hint='Move "daphne" before "django.contrib.staticfiles".',
                id="realtime.E002",
            )
        )
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if "default" not in layers:
        messages.append(
            Error(
                "CHANNEL_LAYERS has no default layer, so nothing reaches the dashboard.",
                hint=f'CHANNEL_LAYERS = {{"default": {{"BACKEND": "{IN_MEMORY_LAYER}"}}}} '
                "for one process; channels_redis.core.RedisChannelLayer otherwise.",
                id="realtime.E003",
            )
        )
    elif layers["default"].get("BACKEND") == IN_MEMORY_LAYER and not settings.DEBUG:
        messages.append(
            Warning(
                "The in-memory channel layer is in use while DEBUG is off; it never "
                "crosses processes, so workers and other server processes cannot reach "
                "the dashboard.",
                hint="Set REDIS_URL (channels_redis) in production.",
                id="realtime.W002",
            )
        )
    return messages
