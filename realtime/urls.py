from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, path, re_path

from realtime import views

app_name = "realtime"

#: Admin pages of the live dashboard; the project includes them under "admin/",
#: before admin.site.urls, whose catch-all would otherwise answer 404.
urlpatterns: list[URLPattern] = [
    path("webhooks/live/", admin.site.admin_view(views.live), name="live"),
    path(
        "webhooks/live/events/<int:id>/",
        admin.site.admin_view(views.event_detail),
        name="event_detail",
    ),
    path("webhooks/live/rates/", admin.site.admin_view(views.rates), name="rates"),
    re_path(
        r"^webhooks/live/endpoints/(?P<slug>[-a-zA-Z0-9_]+)/(?P<action>pause|resume)/$",
        admin.site.admin_view(views.endpoint_processing),
        name="endpoint_processing",
    ),
]
