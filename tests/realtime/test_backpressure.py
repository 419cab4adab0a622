"""Backpressure under daphne: a socket whose write buffer is full holds its frames back,
so its queue in the hub fills and the socket is closed (4008)."""

from __future__ import annotations

import asyncio
import functools
from types import SimpleNamespace

import pytest

from realtime import backpressure, hub


class Wrapper:
    """As Channels' session middleware wraps a server's send."""

    def __init__(self, real_send: object) -> None:
        self.real_send = real_send

    async def send(self, message: dict) -> None:
        raise AssertionError("never called")


async def server_send(protocol: object, message: dict) -> None:
    raise AssertionError("never called")


def test_daphne_protocol_is_found_through_the_session_wrapper() -> None:
    protocol = SimpleNamespace(transport=SimpleNamespace(producerPaused=True))
    send = Wrapper(functools.partial(server_send, protocol)).send
    assert backpressure.daphne_protocol(send) is protocol
    assert backpressure.watch(send).blocked


def test_other_servers_sends_are_never_blocked() -> None:
    async def send(message: dict) -> None:
        return None

    assert backpressure.daphne_protocol(send) is None
    assert not backpressure.watch(send).blocked
    assert not backpressure.watch(None).blocked


class Recording:
    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closed: int | None = None

    async def send(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool = False,
    ) -> None:
        assert text_data is not None
        self.frames.append(text_data)

    async def close(
        self, code: int | bool | None = None, reason: str | None = None
    ) -> None:
        self.closed = int(code) if code is not None else 1000


@pytest.mark.asyncio
async def test_a_full_write_buffer_fills_the_queue_and_closes_the_socket() -> None:
    transport = SimpleNamespace(producerPaused=False)
    socket = Recording()
    subscriber = hub.Subscriber(socket, 3, backpressure.Flow(transport))
    subscriber.start()
    subscriber.offer("first")
    async with asyncio.timeout(5):
        while not socket.frames:
            await asyncio.sleep(0.01)
    transport.producerPaused = True  # the client stopped reading
    for n in range(5):
        subscriber.offer(f"frame {n}")
        await asyncio.sleep(0.01)
    async with asyncio.timeout(5):
        while socket.closed is None:
            await asyncio.sleep(0.01)
    assert socket.closed == hub.CLOSE_TOO_SLOW
    assert socket.frames == ["first"]
    await subscriber.stop()


@pytest.mark.asyncio
async def test_a_drained_buffer_lets_held_frames_go_in_order() -> None:
    transport = SimpleNamespace(producerPaused=True)
    socket = Recording()
    subscriber = hub.Subscriber(socket, 10, backpressure.Flow(transport))
    subscriber.start()
    for n in range(3):
        subscriber.offer(f"frame {n}")
    await asyncio.sleep(0.2)
    assert socket.frames == []
    transport.producerPaused = False
    async with asyncio.timeout(5):
        while len(socket.frames) < 3:
            await asyncio.sleep(0.01)
    assert socket.frames == ["frame 0", "frame 1", "frame 2"]
    assert socket.closed is None
    await subscriber.stop()
