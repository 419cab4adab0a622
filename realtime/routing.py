from __future__ import annotations

from django.urls import URLPattern

#: WebSocket routes; the project wraps them in
#: AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(...))).
websocket_urlpatterns: list[URLPattern] = []
