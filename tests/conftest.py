from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from webhooks.ingest import endpoints as lookup
from webhooks.ingest.breaker import breaker
from webhooks.ingest.ratelimit import buckets
from webhooks.processing import handlers

#: Handlers of the demo project's worked example, discovered at start-up.
DEMO_HANDLERS = "orders."

# The property-based tests: the default profile is derandomized, so CI and every
# run see the same examples and a failure reproduces; HYPOTHESIS_PROFILE=explore
# draws fresh, more numerous examples for a local hunt. Examples share a test's
# database fixtures on purpose (each one asserts on counts it read itself), and
# their time is bounded by their number, not by a per-example deadline.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
hypothesis_settings.register_profile(
    "explore",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Leave the ``postgres`` tests out of runs on other databases (make test runs both).

    They are deselected, not skipped: each lane runs every test it selects.
    """
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    kept = [item for item in items if item.get_closest_marker("postgres") is None]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture
def provider_client() -> Client:
    """A client that enforces CSRF, as a provider's server would (it has no token)."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture(autouse=True)
def _fresh_process_state() -> None:
    # Rate-limit buckets and kept endpoints outlive a test's rolled-back rows.
    buckets.clear()
    lookup.forget()
    breaker.reset()


@pytest.fixture(autouse=True)
def _demo_handlers_hidden() -> Iterator[None]:
    """Keep the orders app's handlers out of tests that register their own.

    "orders" is installed so its tests have tables, and start-up discovers its
    handlers; left in place they would also run on every GitHub push and Stripe
    payment the other tests process. tests/orders/ overrides this fixture.
    """
    saved = handlers._registry[:]
    handlers._registry[:] = [
        entry for entry in saved if not entry.name.startswith(DEMO_HANDLERS)
    ]
    yield
    handlers._registry[:] = saved


@pytest_asyncio.fixture
async def async_db_connections() -> AsyncIterator[None]:
    """Close the connections async ORM calls opened in asgiref's shared thread.

    Left open, PostgreSQL refuses to drop the test database at the end of the run.
    """
    yield
    await sync_to_async(connections.close_all)()
