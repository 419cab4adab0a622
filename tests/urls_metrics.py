from __future__ import annotations

from django.urls import include, path

from project.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("metrics/", include("webhooks.observability.urls")),
    *project_urlpatterns,
]
