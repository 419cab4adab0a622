"""The live socket through the real ASGI stack (origin check, sessions, auth), on both layers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings

from tests.asgi import application
from tests.factories import make_endpoint, make_event
from tests.webhooks.ingest.test_views import github_headers
from webhooks.models import Event

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("async_db_connections"),
]

ORIGIN = (b"origin", b"http://testserver")
TIMEOUT = 5


def memory_layer() -> dict[str, Any]:
    return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def redis_layer() -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": ["redis://127.0.0.1:6379/0"],
                "prefix": f"t{uuid.uuid4().hex[:8]}",
            },
        }
    }


@pytest_asyncio.fixture(params=["memory", "redis"])
async def layer(request) -> AsyncIterator[str]:
    config = memory_layer() if request.param == "memory" else redis_layer()
    with override_settings(CHANNEL_LAYERS=config):
        expected = (
            "InMemoryChannelLayer" if request.param == "memory" else "RedisChannelLayer"
        )
        assert type(get_channel_layer()).__name__ == expected
        yield request.param
        channel_layer = get_channel_layer()
        if hasattr(channel_layer, "flush"):
            await channel_layer.flush()


def make_user(*, staff: bool = True, perms: tuple[str, ...] = ("view_event",)) -> User:
    user = User.objects.create_user(
        f"u{uuid.uuid4().hex[:8]}", password="pw", is_staff=staff
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return user


def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(
    user: User | None = None, origin: tuple[bytes, bytes] = ORIGIN
) -> WebsocketCommunicator:
    headers = [origin]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, "/ws/webhooks/", headers=headers)


async def connected(user: User) -> WebsocketCommunicator:
    socket = await open_socket(user)
    accepted, _ = await socket.connect(timeout=TIMEOUT)
    assert accepted
    return socket


async def receive(socket: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await socket.receive_from(timeout=TIMEOUT))


async def receive_messages(
    socket: WebsocketCommunicator, count: int
) -> list[dict[str, Any]]:
    """The next ``count`` messages, with batch frames unpacked."""
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        frame = await receive(socket)
        messages.extend(frame["messages"] if frame["type"] == "batch" else [frame])
    return messages


def post_delivery(body: bytes) -> int:
    response = Client().post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body),
    )
    assert response.status_code == 200, response.content
    return response.json()["id"]


async def refused(socket: WebsocketCommunicator) -> bool:
    accepted, _ = await socket.connect(timeout=TIMEOUT)
    await socket.disconnect()
    return not accepted


async def test_anonymous_is_refused(layer) -> None:
    assert await refused(await open_socket())


async def test_non_staff_is_refused(layer) -> None:
    user = await sync_to_async(make_user)(staff=False)
    assert await refused(await open_socket(user))


async def test_staff_without_view_permission_is_refused(layer) -> None:
    user = await sync_to_async(make_user)(perms=())
    assert await refused(await open_socket(user))


async def test_inactive_staff_is_refused(layer) -> None:
    user = await sync_to_async(make_user)()
    user.is_active = False
    await user.asave()
    assert await refused(await open_socket(user))


async def test_foreign_origin_is_refused(layer) -> None:
    user = await sync_to_async(make_user)()
    assert await refused(
        await open_socket(user, origin=(b"origin", b"https://evil.example"))
    )


async def test_missing_origin_is_refused(layer) -> None:
    user = await sync_to_async(make_user)()
    socket = WebsocketCommunicator(
        application,
        "/ws/webhooks/",
        headers=[(b"cookie", await sync_to_async(session_cookie)(user))],
    )
    assert await refused(socket)


async def test_staff_gets_hello_then_snapshot_newest_first(layer) -> None:
    user = await sync_to_async(make_user)(perms=("view_event", "change_event"))
    endpoint = await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    first = await sync_to_async(make_event)(endpoint, "a")
    second = await sync_to_async(make_event)(endpoint, "b")
    socket = await connected(user)
    hello = await receive(socket)
    assert hello == {
        "type": "hello",
        "user": user.username,
        "can_replay": True,
        "latest_id": second.pk,
    }
    snapshot = await receive(socket)
    assert snapshot["type"] == "snapshot"
    assert [event["id"] for event in snapshot["events"]] == [second.pk, first.pk]
    summary = snapshot["events"][0]
    assert set(summary) == {
        "id",
        "endpoint",
        "provider",
        "event_type",
        "delivery_id",
        "status",
        "attempts",
        "received_at",
        "processed_at",
        "last_error",
        "size",
    }
    assert summary["endpoint"] == "gh"
    assert summary["received_at"].endswith("Z")
    await socket.disconnect()


async def test_posted_delivery_arrives_as_event_received(layer) -> None:
    user = await sync_to_async(make_user)()
    await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    socket = await connected(user)
    await receive_messages(socket, 2)  # hello, snapshot
    event_id = await sync_to_async(post_delivery)(b'{"zen": "live"}')
    (received,) = await receive_messages(socket, 1)
    assert received["type"] == "event.received"
    assert received["event"]["id"] == event_id
    assert received["event"]["status"] == "pending"
    await socket.disconnect()


async def test_rejected_delivery_arrives_as_delivery_rejected(layer) -> None:
    user = await sync_to_async(make_user)()
    await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    socket = await connected(user)
    await receive_messages(socket, 2)

    def post_forged() -> None:
        body = b"{}"
        Client().post(
            "/webhooks/gh/",
            body,
            content_type="application/json",
            headers=github_headers(body, secret="forged"),
        )

    await sync_to_async(post_forged)()
    (rejected,) = await receive_messages(socket, 1)
    assert rejected["type"] == "delivery.rejected"
    assert rejected["rejection"]["endpoint"] == "gh"
    assert rejected["rejection"]["reason"] == "signature_mismatch"
    assert rejected["rejection"]["source_ip"] == "127.0.0.1"
    assert "s3cret" not in json.dumps(rejected)
    await socket.disconnect()


async def test_burst_of_deliveries_is_coalesced_in_order(layer) -> None:
    user = await sync_to_async(make_user)()
    await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    socket = await connected(user)
    await receive_messages(socket, 2)

    def post_burst() -> list[int]:
        return [post_delivery(json.dumps({"n": n}).encode()) for n in range(20)]

    ids = await sync_to_async(post_burst)()
    messages = await receive_messages(socket, 20)
    assert [message["event"]["id"] for message in messages] == ids
    await socket.disconnect()


async def test_resume_returns_exactly_the_missed_events(layer) -> None:
    user = await sync_to_async(make_user)()
    endpoint = await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    events = [await sync_to_async(make_event)(endpoint, f"d{n}") for n in range(5)]
    socket = await connected(user)
    await receive_messages(socket, 2)
    await socket.send_to(
        text_data=json.dumps({"type": "resume", "after_id": events[1].pk})
    )
    resumed = await receive(socket)
    assert resumed["type"] == "resumed"
    assert [event["id"] for event in resumed["events"]] == [
        event.pk for event in events[2:]
    ]
    assert resumed["complete"] is True
    await socket.disconnect()


@override_settings(REALTIME_RESUME_LIMIT=2)
async def test_resume_in_pages_says_when_it_is_incomplete(layer) -> None:
    user = await sync_to_async(make_user)()
    endpoint = await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    events = [await sync_to_async(make_event)(endpoint, f"d{n}") for n in range(3)]
    socket = await connected(user)
    await receive_messages(socket, 2)
    await socket.send_to(text_data=json.dumps({"type": "resume", "after_id": 0}))
    page = await receive(socket)
    assert [event["id"] for event in page["events"]] == [events[0].pk, events[1].pk]
    assert page["complete"] is False
    await socket.disconnect()


async def test_replay_without_permission_is_forbidden(layer) -> None:
    user = await sync_to_async(make_user)()
    endpoint = await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    event = await sync_to_async(make_event)(endpoint, status=Event.Status.FAILED)
    socket = await connected(user)
    await receive_messages(socket, 2)
    await socket.send_to(text_data=json.dumps({"type": "replay", "id": event.pk}))
    answer = await receive(socket)
    assert (answer["type"], answer["error"]) == ("error", "forbidden")
    await event.arefresh_from_db()
    assert event.status == Event.Status.FAILED
    await socket.disconnect()


async def test_replay_with_permission_requeues_and_broadcasts_the_update(layer) -> None:
    user = await sync_to_async(make_user)(perms=("view_event", "change_event"))
    endpoint = await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    event = await sync_to_async(make_event)(
        endpoint, status=Event.Status.FAILED, attempts=8
    )
    socket = await connected(user)
    await receive_messages(socket, 2)
    await socket.send_to(text_data=json.dumps({"type": "replay", "id": event.pk}))
    (updated,) = await receive_messages(socket, 1)
    assert updated["type"] == "event.updated"
    assert (updated["event"]["id"], updated["event"]["status"]) == (event.pk, "pending")
    assert updated["event"]["attempts"] == 0
    await socket.disconnect()


async def test_replay_of_a_missing_event_is_not_found(layer) -> None:
    user = await sync_to_async(make_user)(perms=("view_event", "change_event"))
    socket = await connected(user)
    await receive_messages(socket, 2)
    await socket.send_to(text_data=json.dumps({"type": "replay", "id": 999999}))
    answer = await receive(socket)
    assert (answer["type"], answer["error"]) == ("error", "not_found")
    await socket.disconnect()


async def test_ping_gets_pong(layer) -> None:
    user = await sync_to_async(make_user)()
    socket = await connected(user)
    await receive_messages(socket, 2)
    await socket.send_to(text_data='{"type": "ping"}')
    assert await receive(socket) == {"type": "pong"}
    await socket.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[]",
        "42",
        '{"no": "type"}',
        '{"type": "subscribe"}',
        '{"type": "resume"}',
        '{"type": "resume", "after_id": -1}',
        '{"type": "resume", "after_id": "7"}',
        '{"type": "resume", "after_id": true}',
        '{"type": "replay", "id": 1.5}',
        '{"type": "__init__"}',
        # Nested past the parser's recursion limit, yet within the frame limit.
        "[" * 4000,
        '{"a":' * 650 + "1" + "}" * 650,
        # A lone surrogate, escaped and raw (no real server passes a raw one on).
        '"\\ud800"',
        '{"type": "\\udfff"}',
        "\ud800",
        '{"type": "ping\x00"}',
        '{"type": NaN}',
        '{"type": "resume", "after_id": 1e999}',
        '{"type": "replay", "id": -Infinity}',
    ],
)
async def test_garbage_frames_get_an_error_and_the_socket_stays_open(
    layer, frame
) -> None:
    user = await sync_to_async(make_user)(perms=("view_event", "change_event"))
    socket = await connected(user)
    await receive_messages(socket, 2)
    await socket.send_to(text_data=frame)
    answer = await receive(socket)
    assert (answer["type"], answer["error"]) == ("error", "bad_message")
    await socket.send_to(text_data='{"type": "ping"}')
    assert await receive(socket) == {"type": "pong"}
    await socket.disconnect()


async def test_binary_frame_gets_an_error(layer) -> None:
    user = await sync_to_async(make_user)()
    socket = await connected(user)
    await receive_messages(socket, 2)
    await socket.send_to(bytes_data=b"\x00\x01")
    assert (await receive(socket))["error"] == "bad_message"
    await socket.disconnect()


async def test_oversized_frame_gets_an_error_and_the_socket_stays_open(layer) -> None:
    # It used to close with 1009, a code servers refuse from an application:
    # the browser saw 1011 and daphne logged an exception.
    user = await sync_to_async(make_user)()
    socket = await connected(user)
    await receive_messages(socket, 2)
    await socket.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 10000}))
    answer = await receive(socket)
    assert (answer["type"], answer["error"]) == ("error", "bad_message")
    await socket.send_to(text_data='{"type": "ping"}')
    assert await receive(socket) == {"type": "pong"}
    await socket.disconnect()


@override_settings(REALTIME_MAX_FRAME_BYTES=64)
@pytest.mark.parametrize(
    ("pad", "answer"), [("é" * 19, "pong"), ("é" * 20, "error")], ids=["63", "65"]
)
async def test_frame_limit_counts_utf8_bytes_not_characters(layer, pad, answer) -> None:
    user = await sync_to_async(make_user)()
    socket = await connected(user)
    await receive_messages(socket, 2)
    frame = json.dumps({"type": "ping", "p": pad}, ensure_ascii=False)
    assert len(frame) < 64  # in characters, both fit; in bytes, 63 and 65
    await socket.send_to(text_data=frame)
    assert (await receive(socket))["type"] == answer
    await socket.disconnect()


async def test_two_dashboards_both_receive(layer) -> None:
    user = await sync_to_async(make_user)()
    await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    sockets = [await connected(user) for _ in range(2)]
    for socket in sockets:
        await receive_messages(socket, 2)
    event_id = await sync_to_async(post_delivery)(b'{"both": true}')
    for socket in sockets:
        (received,) = await receive_messages(socket, 1)
        assert received["event"]["id"] == event_id
    await asyncio.gather(*(socket.disconnect() for socket in sockets))
