"""System checks for serving the live dashboard over ASGI."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.urls.resolvers import RegexPattern, RoutePattern

#: The URL pattern kinds Channels' URLRouter takes.
Pattern = (RoutePattern, RegexPattern)

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


#: Where the live page opens its socket (realtime.views.WEBSOCKET_PATH, without the slash).
SOCKET_ROUTE = "ws/webhooks/"
#: How deep the search through middleware and routers goes before it gives up.
MAX_DEPTH = 30


@register()
def check_wiring(**kwargs: Any) -> list[CheckMessage]:
    """The live page's URL resolves to it, and the ASGI application routes its socket."""
    messages = check_live_page_url()
    path = getattr(settings, "ASGI_APPLICATION", None)
    if path:
        messages.extend(check_asgi_application(path))
    return messages


@register()
def check_layer_processes(**kwargs: Any) -> list[CheckMessage]:
    """The in-memory layer cannot carry news from the processes that run handlers."""
    from webhooks.conf import conf

    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    backend = (layers.get("default") or {}).get("BACKEND")
    if backend != IN_MEMORY_LAYER or conf.PROCESSING == "inline":
        return []
    return [
        Warning(
            f"WEBHOOKS_PROCESSING is {conf.PROCESSING!r}, so handlers run in other "
            "processes, but the in-memory channel layer never leaves its process: "
            "the live page sees new events, never their status changes.",
            hint="Use channels_redis.core.RedisChannelLayer (the [redis] extra), or "
            'WEBHOOKS_PROCESSING = "inline" for a single server process.',
            id="realtime.W003",
        )
    ]


def check_live_page_url() -> list[CheckMessage]:
    from django.urls import NoReverseMatch, Resolver404, resolve, reverse

    hint = (
        'Add path("admin/", include("realtime.urls")) to your ROOT_URLCONF, before '
        'path("admin/", admin.site.urls).'
    )
    try:
        url = reverse("realtime:live")
    except NoReverseMatch:
        return [
            Error(
                "The live page has no URL: realtime.urls is not included, so "
                "/admin/webhooks/live/ answers 404.",
                hint=hint,
                id="realtime.E005",
            )
        ]
    try:
        match = resolve(url)
    except Resolver404:
        match = None
    if match is None or match.view_name != "realtime:live":
        return [
            Error(
                f"{url} does not reach the live page: another URL pattern comes first "
                "(admin.site.urls answers every path under admin/ itself).",
                hint=hint,
                id="realtime.E005",
            )
        ]
    return []


def check_asgi_application(path: str) -> list[CheckMessage]:
    from django.utils.module_loading import import_string

    try:
        application = import_string(path)
    except Exception as error:  # any failure of the user's module, reported as such
        return [
            Error(
                f"ASGI_APPLICATION {path!r} cannot be imported: {error}",
                hint="Fix the module, or point ASGI_APPLICATION at your asgi.py's application.",
                id="realtime.E004",
            )
        ]
    return check_routing(path, application)


def check_routing(path: str, application: Any) -> list[CheckMessage]:
    from channels.routing import ProtocolTypeRouter

    hint = (
        "Route the socket as the README's asgi.py does: "
        '"websocket": AllowedHostsOriginValidator(AuthMiddlewareStack('
        "URLRouter(realtime.routing.websocket_urlpatterns)))."
    )
    router = next(
        (node for node, _ in walk(application) if isinstance(node, ProtocolTypeRouter)),
        None,
    )
    websocket = router.application_mapping.get("websocket") if router else None
    if websocket is None:
        return [
            Error(
                f"The ASGI application {path} does not route WebSocket connections "
                "(Django's own get_asgi_application() serves HTTP only), so the live "
                "page stays on 'reconnecting'.",
                hint=hint,
                id="realtime.E004",
            )
        ]
    found = next(
        ((node, trail) for node, trail in walk(websocket) if is_feed_consumer(node)),
        None,
    )
    if found is None:
        return [
            Error(
                f"The WebSocket route of {path} does not reach realtime's consumer, so "
                "the live page stays on 'reconnecting'.",
                hint=hint,
                id="realtime.E004",
            )
        ]
    _, trail = found
    messages: list[CheckMessage] = []
    patterns = [step for step in trail if isinstance(step, Pattern)]
    route = "".join(str(pattern) for pattern in patterns)
    # Only plain path() routes are compared; a regex may match the path in many ways.
    plain = all(isinstance(pattern, RoutePattern) for pattern in patterns)
    if plain and route.lstrip("/") != SOCKET_ROUTE:
        messages.append(
            Error(
                f"realtime's consumer is routed at {route!r}, but the live page "
                f"connects to /{SOCKET_ROUTE}.",
                hint="Route realtime.routing.websocket_urlpatterns as they are, with no "
                "prefix.",
                id="realtime.E004",
            )
        )
    from channels.auth import AuthMiddleware
    from channels.security.websocket import OriginValidator

    wrappers = [step for step in trail if not isinstance(step, Pattern)]
    if not any(isinstance(step, AuthMiddleware) for step in wrappers):
        messages.append(
            Error(
                "The WebSocket route has no AuthMiddlewareStack, so the socket never "
                "knows the user and refuses every page (HTTP 403).",
                hint=hint,
                id="realtime.E006",
            )
        )
    if not any(isinstance(step, OriginValidator) for step in wrappers):
        messages.append(
            Warning(
                "The WebSocket route has no AllowedHostsOriginValidator, so any web "
                "site a signed-in user visits may open the feed in their name.",
                hint=hint,
                id="realtime.W004",
            )
        )
    return messages


def is_feed_consumer(node: Any) -> bool:
    from realtime.consumers import EventFeedConsumer

    consumer = getattr(node, "consumer_class", None)
    return isinstance(consumer, type) and issubclass(consumer, EventFeedConsumer)


def walk(top: Any) -> Any:
    """Each ASGI application reachable from ``top``, with the trail that leads to it.

    The trail holds the wrappers passed through and the URL patterns matched on
    the way. Wrappers are followed through the attributes Channels and
    Django use (``application``, ``inner``, ``app``), URL routers through their
    routes, and plain functions through the names they close over.
    """
    from channels.routing import ProtocolTypeRouter, URLRouter

    seen: set[int] = set()
    pending: list[tuple[Any, tuple[Any, ...]]] = [(top, ())]
    while pending:
        node, trail = pending.pop(0)
        if id(node) in seen or len(trail) > MAX_DEPTH:
            continue
        seen.add(id(node))
        yield node, trail
        children: list[tuple[Any, tuple[Any, ...]]] = []
        if isinstance(node, ProtocolTypeRouter):
            children = [(app, trail) for app in node.application_mapping.values()]
        elif isinstance(node, URLRouter):
            # Routes are URLPattern objects; the stubs also allow a bare URLRouter.
            children = [
                (route.callback, (*trail, route.pattern))
                for route in node.routes
                if not isinstance(route, URLRouter)
            ]
        else:
            for name in ("application", "inner", "app"):
                child = getattr(node, name, None)
                if child is not None and callable(child):
                    children.append((child, (*trail, node)))
            for cell in getattr(node, "__closure__", None) or ():
                try:
                    child = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                if callable(child) and not isinstance(child, type):
                    children.append((child, (*trail, node)))
        pending.extend(children)
