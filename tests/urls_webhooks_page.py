"""A site with a page of its own at ``/webhooks``, beside the webhooks URLs under ``/webhooks/``."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def page(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"page": "the site's own"})


urlpatterns = [
    path("webhooks", page),
    path("webhooks/", include("webhooks.urls")),
]
