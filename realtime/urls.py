from __future__ import annotations

from django.urls import URLPattern

app_name = "realtime"

#: Admin pages of the live dashboard; included before admin.site.urls.
urlpatterns: list[URLPattern] = []
