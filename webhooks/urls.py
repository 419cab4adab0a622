from __future__ import annotations

from django.urls import include, path, re_path

from webhooks.ingest import views
from webhooks.observability import health

app_name = "webhooks"

urlpatterns = [
    path("health/", health.health, name="health"),
    # Before the slugs: "api" is a reserved slug.
    path("api/", include("webhooks.api.urls")),
    # The trailing slash is optional: providers are given URLs by hand, and a
    # redirect would lose the POST body.
    path("<slug:slug>/", views.receive, name="receive"),
    re_path(r"^(?P<slug>[-a-zA-Z0-9_]+)$", views.receive, name="receive_without_slash"),
    # Anything else is not an endpoint: a JSON answer a provider can read, never
    # an HTML page, nor an APPEND_SLASH redirect (which cannot keep a POST and
    # under DEBUG is a 500).
    re_path(r"^", views.not_an_endpoint),
]
