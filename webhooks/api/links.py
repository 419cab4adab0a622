"""The public URL of an endpoint, for the command line and the admin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import reverse

from webhooks.conf import conf

if TYPE_CHECKING:
    from webhooks.models import Endpoint

#: Where ``manage.py runserver`` listens, used when WEBHOOKS_PUBLIC_URL is unset.
DEVELOPMENT_URL = "http://127.0.0.1:8000"


def endpoint_url(endpoint: Endpoint) -> str:
    path = reverse("webhooks:receive", kwargs={"slug": endpoint.slug})
    return (conf.PUBLIC_URL or DEVELOPMENT_URL) + path
