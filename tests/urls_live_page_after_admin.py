"""realtime.urls included after the admin, whose catch-all then answers the live page's URL."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("admin/", include("realtime.urls")),
    path("webhooks/", include("webhooks.urls")),
]
