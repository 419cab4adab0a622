from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path(
        "admin/", include("realtime.urls")
    ),  # the live page, before the admin's catch-all
    path("admin/", admin.site.urls),
    path("webhooks/", include("webhooks.urls")),
]
