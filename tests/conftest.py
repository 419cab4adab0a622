from __future__ import annotations

import pytest
from django.test import Client

from webhooks.ratelimit import buckets


@pytest.fixture
def provider_client() -> Client:
    """A client that enforces CSRF, as a provider's server would (it has no token)."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    buckets.clear()
