from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client

from webhooks.ratelimit import buckets


@pytest.fixture
def provider_client() -> Client:
    """A client that enforces CSRF, as a provider's server would (it has no token)."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    buckets.clear()


@pytest_asyncio.fixture
async def async_db_connections() -> AsyncIterator[None]:
    """Close the connections async ORM calls opened in asgiref's shared thread.

    Left open, PostgreSQL refuses to drop the test database at the end of the run.
    """
    yield
    await sync_to_async(connections.close_all)()
