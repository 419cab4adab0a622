"""ASGI applications wired right and wrong, for the realtime wiring checks."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application
from django.urls import path

from webhooks.asgi import deliveries_first

#: What django-admin startproject writes into asgi.py.
startproject = get_asgi_application()

from realtime.routing import websocket_urlpatterns  # noqa: E402  (needs the app registry)


class OtherConsumer(AsyncWebsocketConsumer):
    pass


def protocols(websocket):
    return ProtocolTypeRouter({"http": startproject, "websocket": websocket})


http_only = ProtocolTypeRouter({"http": startproject})
other_consumer = protocols(
    AllowedHostsOriginValidator(
        AuthMiddlewareStack(URLRouter([path("ws/chat/", OtherConsumer.as_asgi())]))
    )
)
without_auth = protocols(AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)))
without_origin_check = protocols(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
under_a_prefix = protocols(
    AllowedHostsOriginValidator(
        AuthMiddlewareStack(
            URLRouter([path("socket/", URLRouter(websocket_urlpatterns))])
        )
    )
)
#: Right, with the router inside other wrappers.
wrapped = ASGIStaticFilesHandler(
    deliveries_first(
        protocols(
            AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            )
        )
    )
)
