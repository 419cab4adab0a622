"""Bodies that parse to values a JSON column refuses are stored as received, never answered 503.

Python's JSON parser takes ``1e99999`` (infinity), ``NaN``, lone surrogates
(escaped, or raw bytes, which it decodes with ``surrogatepass``) and ``\\u0000``;
PostgreSQL's ``jsonb`` refuses each of them. Such a delivery is genuine and
signed: it is stored byte-exact with its payload left unparsed, answered 200,
and fails processing with the unparsed error. Run on both lanes (SQLite and
PostgreSQL) and through both doors.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_both_doors import DOORS, Request, fresh_process_state
from tests.webhooks.ingest.test_views import SECRET, github_headers
from webhooks.models import Event
from webhooks.processing import batches, claims, handlers
from webhooks.providers import payloads

pytestmark = [
    pytest.mark.usefixtures("async_db_connections"),
    pytest.mark.django_db(transaction=True),
]

BODIES = {
    "infinity": b'{"a": 1e99999}',
    "minus-infinity": b'{"a": [-1e99999]}',
    "nan-literal": b'{"a": NaN}',
    "infinity-literal": b"[Infinity]",
    "escaped-lone-surrogate": b'"\\ud800"',
    "escaped-lone-low-surrogate": b'{"id": "x\\udfff"}',
    "escaped-surrogate-in-a-key": b'{"\\udc00": 1}',
    "raw-surrogate-bytes": b'{"id": "x\xed\xa0\x80"}',
    "raw-surrogate-bytes-in-a-key": b'{"\xed\xbf\xbf": 1}',
    "nul": b'{"text": "a\\u0000b"}',
    "nul-in-a-key": b'{"\\u0000": 1}',
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_parser_leaves_such_values_unparsed(body: bytes) -> None:
    assert payloads.parse_json(body) is None


@pytest.mark.parametrize(
    "body",
    [b'{"a": 1e308}', b'{"a": -0.0}', b'"\\ud83d\\ude00"', '"\U0001f600"'.encode()],
    ids=["largest-float", "negative-zero", "escaped-pair", "raw-emoji"],
)
def test_finite_numbers_and_paired_surrogates_still_parse(body: bytes) -> None:
    assert payloads.parse_json(body) == json.loads(body)


@pytest.mark.asyncio
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
async def test_a_signed_delivery_with_such_a_value_is_stored_as_received(
    door: str, body: bytes
) -> None:
    await sync_to_async(make_endpoint)("gh", "github", SECRET)
    await sync_to_async(fresh_process_state)()
    reply = await DOORS[door](Request(body=body, headers=github_headers(body, SECRET)))
    assert (reply.status, reply.body["status"]) == (200, "received"), reply
    event = await Event.objects.aget(pk=reply.body["id"])
    assert bytes(event.body) == body
    assert event.payload is None
    assert event.size == len(body)


def test_such_an_event_fails_processing_with_the_unparsed_error(client) -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    body = BODIES["infinity"]
    response = client.post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body, SECRET),
    )
    assert response.status_code == 200

    def handle(event: Event) -> None:
        raise AssertionError("a handler ran on an unparsed payload")

    handlers.handler("github")(handle)
    try:
        assert claims.claim(10, "test") == [response.json()["id"]]
        batches.run(response.json()["id"], worker="test")
    finally:
        handlers.unregister(handle)
    event = Event.objects.get(endpoint=endpoint)
    assert (event.status, event.last_error) == (Event.Status.FAILED, batches.UNPARSED)
