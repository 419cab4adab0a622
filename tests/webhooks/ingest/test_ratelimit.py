"""Rate limits: a failing source throttled before it costs a write, and limits that
hold across server processes through a shared cache (a real Redis)."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import github_headers
from webhooks.ingest import ratelimit
from webhooks.ingest.ratelimit import TokenBuckets, shared_cache
from webhooks.models import Event, Rejection

REDIS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
        # Unique per run: the counts of one run never meet another's.
        "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
}


def post(client, slug: str, secret: str):
    body = b'{"zen": "x"}'
    return client.post(
        f"/webhooks/{slug}/",
        body,
        content_type="application/json",
        headers=github_headers(body, secret),
    )


@pytest.mark.django_db
@override_settings(WEBHOOKS_REJECTION_LIMIT=(3, 60))
def test_a_source_that_keeps_failing_is_throttled_before_any_write(
    provider_client,
) -> None:
    make_endpoint("gh", "github", "s3cret")
    statuses = [post(provider_client, "gh", "wrong").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    throttled = post(provider_client, "gh", "wrong")
    assert throttled.status_code == 429
    assert throttled["Retry-After"]
    assert Rejection.objects.count() == 3  # the fourth cost no write
    # While throttled, even a good signature from that source waits its turn.
    assert post(provider_client, "gh", "s3cret").status_code == 429
    assert Event.objects.count() == 0


@pytest.mark.django_db
@override_settings(WEBHOOKS_REJECTION_LIMIT=(2, 60))
def test_the_throttle_holds_one_source_at_one_endpoint_only(provider_client) -> None:
    make_endpoint("gh", "github", "s3cret")
    make_endpoint("other", "github", "0ther")
    for _ in range(3):
        post(provider_client, "gh", "wrong")
    assert post(provider_client, "gh", "s3cret").status_code == 429
    assert post(provider_client, "other", "0ther").status_code == 200


def test_a_cache_in_process_memory_shares_nothing() -> None:
    # The test settings' default cache is local memory.
    assert shared_cache() is None
    one = TokenBuckets()
    for _ in range(5):
        assert one.allow("endpoint:1", (5, 60))
    one.sync()  # nothing to share with
    assert not one.allow("endpoint:1", (5, 60))  # its own bucket is empty
    other = TokenBuckets()
    assert other.allow("endpoint:1", (5, 60))  # another process knows nothing of it


@override_settings(CACHES=REDIS_CACHE)
def test_limits_hold_across_processes_through_a_shared_cache(monkeypatch) -> None:
    # The test says when each process syncs: left running, their background
    # syncs (every half second) race with it on a loaded machine, where the
    # first connection to Redis alone can take that long.
    monkeypatch.setattr(ratelimit, "SYNC_SECONDS", 3600)
    assert shared_cache() is not None
    first, second = TokenBuckets(), TokenBuckets()  # two server processes
    limit = (10, 60.0)
    assert all(first.allow("endpoint:7", limit) for _ in range(6))
    assert all(second.allow("endpoint:7", limit) for _ in range(6))
    first.sync()
    assert first.allow("endpoint:7", limit)  # 6 of 10 used, as far as anyone knows
    second.sync()  # now 13 of 10: the window is used up, for both
    first.sync()
    assert not first.allow("endpoint:7", limit)
    assert not second.allow("endpoint:7", limit)
    assert first.exhausted("endpoint:7", limit)
    # Other keys are untouched.
    assert first.allow("endpoint:8", limit)


@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
)
def test_a_failing_cache_leaves_each_process_its_own_limits() -> None:
    buckets = TokenBuckets()
    assert buckets.allow("endpoint:9", (2, 60))
    with pytest.raises(Exception, match="(?i)connect"):
        buckets.sync()  # the sync thread logs this and tries again later
    assert buckets.allow("endpoint:9", (2, 60))
    assert not buckets.allow("endpoint:9", (2, 60))
