from __future__ import annotations

from django.urls import path

from bench.peers.naive_django.receiver.views import stripe_webhook

urlpatterns = [path("webhooks/<slug:slug>/", stripe_webhook)]
