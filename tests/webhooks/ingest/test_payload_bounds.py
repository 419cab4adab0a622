"""Bodies built to blow up the parser: deep, wide, or with very many form fields."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import SECRET, github_headers
from webhooks.models import Event
from webhooks.providers import payloads
from webhooks.providers.delivery import Delivery

FIVE_MIB = 5 * 1024 * 1024


def delivery(body: bytes, content_type: str = "application/json") -> Delivery:
    return Delivery("POST", {"content-type": content_type}, body, None, "", time.time())


def peak_bytes_while_parsing(body: bytes, content_type: str = "application/json"):
    tracemalloc.start()
    try:
        parsed = payloads.parse(delivery(body, content_type))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return parsed, peak


def wide(item: bytes, size: int = FIVE_MIB) -> bytes:
    count = size // (len(item) + 1)
    return b"[" + b",".join([item] * count) + b"]"


@pytest.mark.parametrize("item", [b"{}", b"[]", b'{"a":[]}'])
def test_wide_json_bomb_is_not_parsed_and_costs_little_memory(item) -> None:
    # Parsed, 5 MiB of empty objects is over 100 MB of dicts.
    body = wide(item)
    parsed, peak = peak_bytes_while_parsing(body)
    assert parsed is None
    assert peak < len(body)  # nothing was built from the body


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 500_000 + b"]" * 500_000,
        b'{"a":' * 200_000 + b"1" + b"}" * 200_000,
        # The outermost array is depth 0, its innermost value one past MAX_DEPTH.
        b"[" * (payloads.MAX_DEPTH + 2) + b"]" * (payloads.MAX_DEPTH + 2),
    ],
    ids=["arrays", "objects", "one-past-the-depth-limit"],
)
def test_deep_json_is_not_parsed(body) -> None:
    assert payloads.parse(delivery(body)) is None


def test_json_at_the_bounds_is_parsed() -> None:
    at_depth = b"[" * (payloads.MAX_DEPTH + 1) + b"]" * (payloads.MAX_DEPTH + 1)
    assert payloads.parse(delivery(at_depth)) is not None
    many = json.dumps([{} for _ in range(payloads.MAX_CONTAINERS - 1)]).encode()
    parsed = payloads.parse(delivery(many))
    assert isinstance(parsed, list) and len(parsed) == payloads.MAX_CONTAINERS - 1


def test_one_container_past_the_bound_is_not_parsed() -> None:
    many = json.dumps([{} for _ in range(payloads.MAX_CONTAINERS)]).encode()
    assert payloads.parse(delivery(many)) is None


def test_huge_integer_is_not_parsed() -> None:
    # Python refuses to convert integers of more than 4300 digits (a CPU bomb).
    assert payloads.parse(delivery(b"1" * 100_000)) is None


def test_form_with_too_many_fields_is_not_parsed() -> None:
    body = b"&".join([b"a="] * (payloads.MAX_CONTAINERS + 1))
    parsed, peak = peak_bytes_while_parsing(body, "application/x-www-form-urlencoded")
    assert parsed is None
    assert peak < 10 * len(body)


def test_form_with_repeated_keys_within_the_bound_is_parsed() -> None:
    body = b"&".join([b"a=1"] * 1000)
    parsed = payloads.parse(delivery(body, "application/x-www-form-urlencoded"))
    assert parsed == {"a": ["1"] * 1000}


@pytest.mark.django_db
def test_signed_json_bomb_is_stored_byte_exact_with_no_payload(provider_client: Client):
    # Verified, it is the provider's delivery: kept as sent, and its processing
    # fails with the "did not parse" error rather than the server running out of memory.
    make_endpoint("gh", "github", SECRET)
    body = wide(b"{}", 1024 * 1024)
    response = provider_client.post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body),
    )
    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert event.payload is None
    assert bytes(event.body) == body
