from __future__ import annotations

from django.urls import path

from webhooks.observability import views

app_name = "webhooks_metrics"

urlpatterns = [path("", views.scrape, name="scrape")]
