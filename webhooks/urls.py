from __future__ import annotations

from django.urls import include, path, re_path

from webhooks import health
from webhooks.ingest import views

app_name = "webhooks"

urlpatterns = [
    path("health/", health.health, name="health"),
    # Before the slugs: "api" is a reserved slug.
    path("api/", include("webhooks.api.urls")),
    # The trailing slash is optional: providers are given URLs by hand, and a
    # redirect would lose the POST body.
    path("<slug:slug>/", views.receive, name="receive"),
    re_path(r"^(?P<slug>[-a-zA-Z0-9_]+)$", views.receive, name="receive_without_slash"),
    # Any other single segment cannot be a slug (ASCII letters, digits, - and _), so
    # it gets the unknown-endpoint answer a provider can read, not an HTML page.
    re_path(r"^[^/]*/?$", views.not_an_endpoint),
]
