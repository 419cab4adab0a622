"""The per-endpoint allowlist of event types, through both front doors.

A verified delivery of a type outside the list is answered 200 ``ignored``,
counted (metrics and the live page's tallies) and not stored.
"""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_both_doors import DOORS, SECRET, Request
from tests.webhooks.ingest.test_views import github_headers
from tests.webhooks.observability.scrape import value
from webhooks.ingest import endpoints as lookup
from webhooks.models import Endpoint, Event, Rejection, Tally
from webhooks.observability import tallies

pytestmark = [
    pytest.mark.usefixtures("async_db_connections"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
]

BODY = b'{"zen": "Approachable is better than simple."}'
LABELS = {"endpoint": "gh", "provider": "github"}


def github(event: str, secret: str = SECRET) -> Request:
    headers = github_headers(BODY, secret)
    headers["X-GitHub-Event"] = event
    headers["X-GitHub-Delivery"] = str(uuid.uuid4())
    return Request(headers=headers, body=BODY)


def scrape() -> str:
    return Client().get("/metrics/").content.decode()


def setup(event_types: list[str]) -> None:
    make_endpoint("gh", "github", SECRET, event_types=event_types)
    lookup.forget()
    lookup.find("gh")  # kept, so the ASGI door decides in the event loop
    tallies.forget()


@pytest.mark.parametrize("door", list(DOORS))
async def test_types_outside_the_allowlist_are_ignored_and_not_stored(door) -> None:
    await sync_to_async(setup)(["push", "pull_request*", "issue.closed"])
    before = await sync_to_async(scrape)()
    answers = {}
    for event_type in (
        "push",
        "pull_request",
        "pull_request_review",
        "issue.closed",
        "issue.opened",
        "star",
        "pushed",
    ):
        reply = await DOORS[door](github(event_type))
        assert reply.status == 200, reply
        answers[event_type] = reply.body["status"]
    assert answers == {
        "push": "received",
        "pull_request": "received",
        "pull_request_review": "received",
        "issue.closed": "received",
        "issue.opened": "ignored",
        "star": "ignored",
        "pushed": "ignored",
    }
    stored = {e async for e in Event.objects.values_list("event_type", flat=True)}
    assert stored == {"push", "pull_request", "pull_request_review", "issue.closed"}
    after = await sync_to_async(scrape)()
    grew = value(after, "webhooks_deliveries_ignored_total", **LABELS) - value(
        before, "webhooks_deliveries_ignored_total", **LABELS
    )
    assert grew == 3
    await sync_to_async(tallies.flush)()
    tally = await Tally.objects.aget()
    assert tally.ignored == 3


@pytest.mark.parametrize("door", list(DOORS))
async def test_the_allowlist_applies_only_to_verified_deliveries(door) -> None:
    await sync_to_async(setup)(["push"])
    reply = await DOORS[door](github("star", secret="not the secret"))
    assert (reply.status, reply.body["reason"]) == (401, "signature_mismatch")
    assert [r async for r in Rejection.objects.values_list("reason", flat=True)] == [
        "signature_mismatch"
    ]


@pytest.mark.parametrize("door", list(DOORS))
async def test_an_empty_allowlist_stores_every_type(door) -> None:
    await sync_to_async(setup)([])
    reply = await DOORS[door](github("anything.at_all"))
    assert reply.body["status"] == "received"
    assert await Event.objects.acount() == 1


async def test_a_handshake_is_answered_whatever_the_allowlist() -> None:
    import json
    import time

    from tests.webhooks.providers.test_slack import raw_signature

    body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
    await sync_to_async(make_endpoint)(
        "slack", "slack", SECRET, event_types=["message"]
    )
    timestamp = int(time.time())
    reply = await DOORS["view"](
        Request(
            path="/webhooks/slack/",
            body=body,
            headers={
                "X-Slack-Request-Timestamp": str(timestamp),
                "X-Slack-Signature": raw_signature(body, SECRET, timestamp),
            },
        )
    )
    assert reply.status == 200
    assert reply.body.get("challenge") == "c-123"


async def test_prefixes_and_exact_types() -> None:
    endpoint = Endpoint(event_types=["invoice.*", "charge.succeeded", 7])
    assert endpoint.accepts_type("invoice.paid")
    assert endpoint.accepts_type("invoice.")
    assert endpoint.accepts_type("charge.succeeded")
    assert not endpoint.accepts_type("charge.succeeded.later")
    assert not endpoint.accepts_type("invoic")
    assert not endpoint.accepts_type("7")
    assert Endpoint(event_types=["*"]).accepts_type("")
