"""Deliveries verified in the event loop and stored by group commit.

The first delivery to a slug takes the thread path (the endpoint is read from
the database and kept); later ones are verified in the loop and handed to the
committer. These tests go through the project's ASGI application.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.test import override_settings

from tests.asgi import application
from tests.factories import make_endpoint
from tests.hostile import describe, error_log
from tests.webhooks.ingest.test_asgi import asgi_headers
from tests.webhooks.ingest.test_views import github_headers
from webhooks.ingest import committer as committer_module
from webhooks.ingest import endpoints as lookup
from webhooks.models import Endpoint, EndpointSecret, Event, Rejection
from webhooks.signals import event_received

pytestmark = [
    pytest.mark.usefixtures("async_db_connections"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
]


async def post(
    body: bytes, headers: dict[str, str], slug: str = "gh"
) -> tuple[int, dict]:
    communicator = HttpCommunicator(
        application,
        "POST",
        f"/webhooks/{slug}/",
        body=body,
        headers=asgi_headers(headers, body),
    )
    response = await communicator.get_response(timeout=10)
    await communicator.wait()
    return response["status"], json.loads(response["body"])


def push(number: int) -> bytes:
    return json.dumps({"ref": "refs/heads/main", "number": number}).encode()


async def warmed_endpoint() -> None:
    """An endpoint this process keeps: its first delivery read it from the database."""
    await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    status, _ = await post(push(0), github_headers(push(0), "s3cret"))
    assert status == 200


async def test_a_delivery_to_a_kept_endpoint_is_stored_by_the_committer() -> None:
    await warmed_endpoint()
    before = committer_module.committer.stats["events"]
    body = push(1)
    status, answer = await post(body, github_headers(body, "s3cret"))
    assert (status, answer["status"]) == (200, "received")
    assert committer_module.committer.stats["events"] == before + 1


async def test_concurrent_deliveries_each_get_their_own_committed_row() -> None:
    await warmed_endpoint()
    bodies = [push(n) for n in range(1, 41)]
    headers = [github_headers(body, "s3cret") for body in bodies]
    answers = await asyncio.gather(
        *(post(body, header) for body, header in zip(bodies, headers, strict=True))
    )
    assert {status for status, _ in answers} == {200}
    assert {answer["status"] for _, answer in answers} == {"received"}
    for (_, answer), header, body in zip(answers, headers, bodies, strict=True):
        event = await Event.objects.aget(pk=answer["id"])
        assert event.delivery_id == header["X-GitHub-Delivery"]
        assert bytes(event.body) == body
        assert event.status == Event.Status.PENDING
    assert await Event.objects.acount() == 41


async def test_concurrent_copies_of_one_delivery_store_one_row() -> None:
    await warmed_endpoint()
    body = push(7)
    headers = github_headers(body, "s3cret")
    answers = await asyncio.gather(*(post(body, headers) for _ in range(12)))
    assert {status for status, _ in answers} == {200}
    kinds = sorted(answer["status"] for _, answer in answers)
    assert kinds == ["duplicate"] * 11 + ["received"]
    assert len({answer["id"] for _, answer in answers}) == 1
    assert (
        await Event.objects.filter(delivery_id=headers["X-GitHub-Delivery"]).acount()
        == 1
    )


async def test_a_copy_of_an_earlier_delivery_is_a_duplicate() -> None:
    await warmed_endpoint()
    body = push(8)
    headers = github_headers(body, "s3cret")
    first = await post(body, headers)
    again = await post(body, headers)
    assert first[1]["status"] == "received"
    assert again == (200, {"status": "duplicate", "id": first[1]["id"]})


async def test_a_bad_signature_on_a_kept_endpoint_is_refused_and_recorded() -> None:
    await warmed_endpoint()
    body = push(9)
    status, answer = await post(body, github_headers(body, "not the secret"))
    assert (status, answer) == (
        401,
        {"error": "invalid_signature", "reason": "signature_mismatch"},
    )
    assert await Rejection.objects.acount() == 1
    assert await Event.objects.acount() == 1  # the warm-up delivery only


async def test_a_secret_rotated_elsewhere_verifies_at_once() -> None:
    # Another process rotates (no signal reaches this one's kept endpoint): the
    # delivery signed with the new secret is re-checked against fresh secrets.
    await warmed_endpoint()
    # update() sends no signal, as a change made in another process would not.
    await EndpointSecret.objects.filter(endpoint__slug="gh").aupdate(value="rotated")
    body = push(10)
    status, answer = await post(body, github_headers(body, "rotated"))
    assert (status, answer["status"]) == (200, "received")


@override_settings(WEBHOOKS_MAX_WAITING_COMMITS=0)
async def test_more_deliveries_waiting_than_the_bound_get_503_with_retry_after() -> (
    None
):
    await warmed_endpoint()
    body = push(11)
    communicator = HttpCommunicator(
        application,
        "POST",
        "/webhooks/gh/",
        body=body,
        headers=asgi_headers(github_headers(body, "s3cret"), body),
    )
    response = await communicator.get_response(timeout=10)
    await communicator.wait()
    assert response["status"] == 503
    assert b"retry-after" in {name.lower() for name, _ in response["headers"]}
    assert json.loads(response["body"]) == {"error": "unavailable"}
    assert await Event.objects.acount() == 1


async def test_new_events_are_announced_after_their_commit() -> None:
    await warmed_endpoint()
    seen: list[tuple[int, bool]] = []
    announced = asyncio.Event()
    loop = asyncio.get_running_loop()

    def receiver(sender: object, event: Event, **kwargs: object) -> None:
        # Committed: another connection (this thread's) can read the row.
        seen.append((event.pk, Event.objects.filter(pk=event.pk).exists()))
        loop.call_soon_threadsafe(announced.set)

    event_received.connect(receiver, dispatch_uid="test.announced")
    try:
        body = push(12)
        status, answer = await post(body, github_headers(body, "s3cret"))
        await asyncio.wait_for(announced.wait(), timeout=10)
    finally:
        event_received.disconnect(dispatch_uid="test.announced")
    assert status == 200
    assert seen == [(answer["id"], True)]


async def test_a_batch_stores_in_batch_duplicates_and_earlier_copies_once() -> None:
    endpoint = await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    earlier = await Event.objects.acreate(
        endpoint=endpoint, provider="github", delivery_id="seen", body=b"{}"
    )

    def event(delivery_id: str) -> Event:
        return Event(
            endpoint=endpoint, provider="github", delivery_id=delivery_id, body=b"{}"
        )

    batch = [event("a"), event("seen"), event("a"), event("b")]
    outcomes = await sync_to_async(committer_module.store_batch)(batch)
    a_id = outcomes[0][0]
    assert outcomes == [
        (a_id, True),
        (earlier.pk, False),
        (a_id, False),
        (outcomes[3][0], True),
    ]
    assert await Event.objects.acount() == 3


@pytest.mark.postgres
async def test_a_value_the_database_refuses_fails_only_its_own_delivery() -> None:
    # PostgreSQL's jsonb cannot hold \u0000: that one event fails, the others commit.
    endpoint = await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    batch = [
        Event(endpoint=endpoint, provider="github", delivery_id=str(uuid.uuid4()),
              body=b"{}", payload=payload)
        for payload in ({"ok": 1}, {"bad": "\x00"}, {"ok": 2})
    ]  # fmt: skip
    outcomes = await sync_to_async(committer_module.store_batch)(batch)
    assert isinstance(outcomes[1], Exception)
    assert [outcome[1] for outcome in (outcomes[0], outcomes[2])] == [True, True]
    assert await Event.objects.acount() == 2


async def test_answers_for_a_loop_that_has_closed_are_dropped_quietly() -> None:
    # Raised in the committer thread, the loop's error would end that thread and
    # leave every later delivery waiting.
    endpoint = await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    thread = committer_module.ThreadCommitter(committer_module.Committer())
    gone = asyncio.new_event_loop()
    orphan = committer_module.Waiting(
        Event(endpoint=endpoint, provider="github", delivery_id="orphan", body=b"{}"),
        gone.create_future(),
        gone,
    )
    gone.close()
    with error_log() as records:
        # Queued as store() queues a delivery, from a loop that closed while it waited.
        with thread._lock:
            thread._waiting += 1
        thread._queue.put(orphan)
        after = Event(
            endpoint=endpoint, provider="github", delivery_id="after", body=b"{}"
        )
        async with asyncio.timeout(30):
            pk, created = await thread.store(after)
    assert created
    assert not records, describe(records)
    # The orphan's delivery was stored all the same, and so was the one after it.
    assert await Event.objects.filter(delivery_id="orphan").aexists()
    assert await Event.objects.filter(pk=pk, delivery_id="after").aexists()


@override_settings(WEBHOOKS_REJECTION_LIMIT=(2, 60))
async def test_a_source_that_keeps_failing_is_throttled_on_this_path_too() -> None:
    await warmed_endpoint()
    for n in (20, 21):
        status, _ = await post(push(n), github_headers(push(n), "wrong"))
        assert status == 401
    body = push(22)
    status, answer = await post(body, github_headers(body, "s3cret"))
    assert (status, answer) == (429, {"error": "rate_limited"})
    assert await Event.objects.acount() == 1  # the warm-up delivery only


async def test_the_loop_stores_the_row_the_thread_path_stores() -> None:
    # The first delivery takes the thread path (the endpoint is not kept yet),
    # the second the event loop's; only what differs per delivery may differ.
    await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    for body in (b'{"ref": "main", "n": 7, "s": "caf\\u00e9"}', b'{"x": 1.5e3}'):
        await Event.objects.all().adelete()
        first = await post(body, github_headers(body, "s3cret", **{"X-Extra": "a"}))
        second = await post(body, github_headers(body, "s3cret", **{"X-Extra": "a"}))
        assert [first[1]["status"], second[1]["status"]] == ["received"] * 2
        thread, loop = [
            await Event.objects.aget(pk=a["id"]) for _, a in (first, second)
        ]
        per_delivery = {"id", "delivery_id", "received_at", "next_attempt_at"}
        per_delivery.add("trace_parent")  # a span of its own when tracing is on
        for field in Event._meta.concrete_fields:
            if field.attname in per_delivery:
                continue
            mine, theirs = getattr(loop, field.attname), getattr(thread, field.attname)
            if field.attname == "headers":
                mine.pop("x-github-delivery"), theirs.pop("x-github-delivery")
            if field.attname == "body":
                mine, theirs = bytes(mine), bytes(theirs)
            assert mine == theirs, field.attname
        assert loop.next_attempt_at is not None
        lookup.forget()  # the next body starts on the thread path again


async def test_payload_values_are_stored_as_python_parses_them() -> None:
    # Bodies without a fraction or exponent go to the JSON column as they are;
    # the others are encoded again. Either way the payload reads back as
    # json.loads gave it: 1e2 is the float 100.0, not the integer 100.
    await warmed_endpoint()
    cases = [
        b'{"a": 1e2, "b": 1.50, "c": 10}',
        b'{"n": 12345678901234567890, "s": "caf\\u00e9 \\ud83d\\ude00", "k": 1, "k": 2}',
        b'  [true, null, {"nested": ["\\"quoted\\"", "\\/"]}]  ',
        '{"text": "déjà vu", "e": "1e5 inside a string"}'.encode(),
    ]
    for body in cases:
        status, answer = await post(body, github_headers(body, "s3cret"))
        assert (status, answer["status"]) == (200, "received")
        event = await Event.objects.aget(pk=answer["id"])
        expected = json.loads(body)
        assert event.payload == expected
        # Types too (jsonb keeps keys in an order of its own, so sorted here).
        assert json.dumps(event.payload, sort_keys=True) == json.dumps(
            expected, sort_keys=True
        )


async def test_kept_secrets_follow_their_expiry() -> None:
    from datetime import timedelta

    from django.utils import timezone

    endpoint = await sync_to_async(make_endpoint)("gh", "github", "new-secret")
    await EndpointSecret.objects.acreate(
        endpoint=endpoint,
        value="old-secret",
        expires_at=timezone.now() + timedelta(seconds=1),
    )
    kept, _ = await sync_to_async(lookup.find)("gh")
    assert kept is not None

    @sync_to_async
    def from_the_database() -> list[str]:
        return Endpoint.objects.get(slug="gh").valid_secrets()

    assert kept.valid_secrets() == await from_the_database()
    assert kept.valid_secrets() == ["old-secret", "new-secret"]  # newest first
    await asyncio.sleep(1.2)
    assert kept.valid_secrets() == await from_the_database() == ["new-secret"]


SCOPES = [
    [(b"x-a", b"1"), (b"x-a", b"2"), (b"host", b"testserver")],
    [(b"Content-Type", b"text/plain"), (b"content-type", b"application/json")],
    [(b"content-type", b"application/json"), (b"Content-Type", b"text/plain")],
    [(b"x_forwarded_for", b"1.2.3.4"), (b"X-Mixed-Case", b"v"), (b"x a", b"v")],
    [(b"x\x00y", b"v"), (b"\xdf", b"latin"), (b"\xc5\xbf", b"s"), (b"x-v", b"\xe9")],
    [(b"x-forwarded-for", b"203.0.113.5, 10.0.0.2"), (b"host", b"evil.example")],
    [(b"host", b"testserver:8443"), (b"x-forwarded-proto", b"https")],
    [],
]


@pytest.mark.parametrize("headers", SCOPES)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"WEBHOOKS_TRUSTED_PROXIES": ["10.0.0.0/8"]},
        {"WEBHOOKS_PUBLIC_URL": "https://hooks.example.com"},
    ],
)
async def test_a_delivery_read_from_the_scope_is_the_one_the_view_reads(
    headers, options
) -> None:
    import io

    from django.core.handlers.asgi import ASGIRequest

    from webhooks.ingest.asgi import ScopeDelivery
    from webhooks.ingest.doors import delivery_of

    scope = {
        "type": "http",
        "method": "post",
        "path": "/webhooks/gh/",
        "root_path": "",
        "query_string": b"a=1&b=%20x",
        "scheme": "http",
        "headers": headers,
        "client": ("10.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    with override_settings(**options):
        mine = ScopeDelivery(scope, b"{}", 1.5)
        view = delivery_of(ASGIRequest(scope, io.BytesIO()), b"{}", 1.5)
        assert mine.headers == view.headers
        fields = ("method", "source_ip", "url", "body", "received_at")
        assert [getattr(mine, f) for f in fields] == [getattr(view, f) for f in fields]
