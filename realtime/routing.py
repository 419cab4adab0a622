from __future__ import annotations

from django.urls import path

from realtime.consumers import EventFeedConsumer

#: WebSocket routes; the project wraps them in
#: AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(...))).
websocket_urlpatterns = [
    # django-stubs types path() for HTTP views; Channels' URLRouter takes ASGI apps.
    path("ws/webhooks/", EventFeedConsumer.as_asgi()),  # type: ignore[arg-type]
]
