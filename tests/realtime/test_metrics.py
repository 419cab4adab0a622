"""Dashboard metrics: open sockets and the frames a slow socket never got, in a real scrape."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from realtime.hub import Subscriber
from tests.realtime.test_consumers import connected, make_user, receive
from tests.webhooks.observability.scrape import value

pytestmark = pytest.mark.asyncio


def scrape() -> str:
    response = Client().get("/metrics/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_db_connections")
async def test_open_dashboard_sockets_are_a_gauge() -> None:
    user = await sync_to_async(make_user)()
    before = value(await sync_to_async(scrape)(), "webhooks_dashboard_sockets")
    sockets = [await connected(user) for _ in range(2)]
    for socket in sockets:
        assert (await receive(socket))["type"] == "hello"
    assert (
        value(await sync_to_async(scrape)(), "webhooks_dashboard_sockets") == before + 2
    )
    for socket in sockets:
        await socket.disconnect()
    assert value(await sync_to_async(scrape)(), "webhooks_dashboard_sockets") == before


class StuckSocket:
    """A client that never reads: sends never complete."""

    def __init__(self) -> None:
        self.closed_with: int | None = None

    async def send(self, text_data=None, bytes_data=None, close=False) -> None:
        await asyncio.Event().wait()

    async def close(self, code=None, reason=None) -> None:
        self.closed_with = code


@pytest.mark.django_db
async def test_frames_a_slow_socket_misses_are_counted() -> None:
    before = value(
        await sync_to_async(scrape)(), "webhooks_dashboard_frames_dropped_total"
    )
    socket = StuckSocket()
    subscriber = Subscriber(socket, capacity=2)
    for number in range(2):
        subscriber.offer(f"frame {number}")
    subscriber.offer("one too many")  # the queue is full: dropped, the socket closed
    subscriber.offer("after the close")  # closing: dropped too
    await asyncio.sleep(0)
    assert socket.closed_with is not None
    after = value(
        await sync_to_async(scrape)(), "webhooks_dashboard_frames_dropped_total"
    )
    assert after - before == 2
    await subscriber.stop()
