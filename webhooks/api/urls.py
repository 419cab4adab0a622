from __future__ import annotations

from django.urls import path

from webhooks.api import events, stream

urlpatterns = [
    path("events/", events.events, name="api-events"),
    path("events/<int:event_id>/", events.event_detail, name="api-event"),
    path("events/<int:event_id>/replay/", events.event_replay, name="api-replay"),
    path("stream/", stream.stream, name="api-stream"),
]
