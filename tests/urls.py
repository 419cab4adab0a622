from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", include("realtime.urls")),
    path("admin/", admin.site.urls),
    path("webhooks/", include("webhooks.urls")),
    path("metrics/", include("webhooks.observability.urls")),
]
