"""A project that forgot ``webhooks.urls``."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", include("realtime.urls")),
    path("admin/", admin.site.urls),
]
