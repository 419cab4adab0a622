"""The per-process hub: one frame per burst for everyone, isolation from slow sockets,
and recovery when the channel layer (a real Redis, restarted) goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from redis.exceptions import RedisError

from realtime import hub
from realtime.broadcast import HUB_MESSAGE

pytestmark = pytest.mark.asyncio


class RecordingSocket:
    """Stands in for a consumer: records what the hub sends it."""

    def __init__(self, *, stalled: bool = False) -> None:
        self.frames: list[str] = []
        self.closed: int | None = None
        self.stalled = stalled

    async def send(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool = False,
    ) -> None:
        if self.stalled:
            await asyncio.Event().wait()  # a client that never reads
        assert text_data is not None
        self.frames.append(text_data)

    async def close(
        self, code: int | bool | None = None, reason: str | None = None
    ) -> None:
        self.closed = int(code) if code is not None else 1000

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for frame in self.frames:
            decoded = json.loads(frame)
            out.extend(decoded["messages"] if decoded["type"] == "batch" else [decoded])
        return out


async def publish(layer: Any, n: int) -> None:
    await layer.group_send(
        "webhooks.live",
        {
            "type": HUB_MESSAGE,
            "message": {"type": "event.received", "event": {"id": n}},
        },
    )


async def wait_for(condition, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
)
async def test_a_burst_becomes_one_batch_frame_shared_by_all_sockets() -> None:
    from channels.layers import get_channel_layer

    sockets = [RecordingSocket() for _ in range(3)]
    subscribers = [await hub.join(s) for s in sockets]
    for subscriber in subscribers:
        subscriber.start()
    layer = get_channel_layer()
    for n in range(1, 11):
        await publish(layer, n)
    await wait_for(lambda: all(len(s.messages()) == 10 for s in sockets))
    assert [m["event"]["id"] for m in sockets[0].messages()] == list(range(1, 11))
    assert len(sockets[0].frames) < 10  # coalesced
    # One encoding, the very same frame object for every socket.
    assert all(s.frames[0] is sockets[0].frames[0] for s in sockets)
    for subscriber in subscribers:
        await hub.leave(subscriber)


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    REALTIME_SOCKET_QUEUE_FRAMES=3,
    REALTIME_TICK_SECONDS=0,
)
async def test_a_stalled_socket_is_closed_and_never_holds_up_the_others() -> None:
    from channels.layers import get_channel_layer

    stalled, healthy = RecordingSocket(stalled=True), RecordingSocket()
    subscribers = [await hub.join(stalled), await hub.join(healthy)]
    for subscriber in subscribers:
        subscriber.start()
    layer = get_channel_layer()
    for n in range(1, 21):
        await publish(layer, n)
        await asyncio.sleep(0.005)  # separate frames
    await wait_for(lambda: len(healthy.messages()) == 20)
    await wait_for(lambda: stalled.closed is not None)
    assert stalled.closed == hub.CLOSE_TOO_SLOW
    assert healthy.closed is None
    assert subscribers[0].queue.qsize() <= 3  # memory stays bounded
    for subscriber in subscribers:
        await hub.leave(subscriber)


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    REALTIME_TICK_SECONDS=3600,
)
async def test_the_first_message_after_a_quiet_tick_goes_at_once() -> None:
    # With an hour-long tick, only a leading-edge flush can deliver it.
    from channels.layers import get_channel_layer

    recording = RecordingSocket()
    subscriber = await hub.join(recording)
    subscriber.start()
    await publish(get_channel_layer(), 1)
    await wait_for(lambda: len(recording.messages()) == 1)
    # The next one waits for the tick: a burst shares the following frame.
    await publish(get_channel_layer(), 2)
    await asyncio.sleep(0.2)
    assert [m["event"]["id"] for m in recording.messages()] == [1]
    await hub.leave(subscriber)


@override_settings(REALTIME_TICK_SECONDS=0.05, REALTIME_MAX_FRAMES_PER_SECOND=1000)
async def test_the_tick_grows_with_the_sockets_to_bound_frames_per_second() -> None:
    from channels.layers import InMemoryChannelLayer

    one = hub.Hub(InMemoryChannelLayer())
    assert one.tick() == 0.05
    one.subscribers = {object() for _ in range(200)}  # type: ignore[misc]
    assert one.tick() == 0.2  # 200 sockets x 5 frames/s = 1000 frames/s


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        import time

        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def private_redis() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required (apt-get install redis-server)")
    port = free_port()
    processes = [start_redis(port)]
    yield port, processes
    for process in processes:
        process.kill()
        process.wait()


async def test_losing_redis_closes_sockets_and_the_hub_recovers(private_redis) -> None:
    from channels.layers import get_channel_layer

    port, processes = private_redis
    config = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
        }
    }
    with override_settings(CHANNEL_LAYERS=config, REALTIME_TICK_SECONDS=0):
        socket_ = RecordingSocket()
        subscriber = await hub.join(socket_)
        subscriber.start()
        layer = get_channel_layer()
        await publish(layer, 1)
        await wait_for(lambda: len(socket_.messages()) == 1)

        processes[0].kill()
        processes[0].wait()
        await wait_for(lambda: socket_.closed == hub.CLOSE_LAYER_LOST, timeout=10)
        await hub.leave(subscriber)

        processes.append(start_redis(port))
        # Pooled connections to the dead server fail once more before the layer
        # reconnects; a page would reconnect each time it is closed, and so does this.
        for n in range(2, 12):
            again = RecordingSocket()
            subscriber = await hub.join(again)
            subscriber.start()
            try:
                await publish(layer, n)
            except (OSError, RedisError):
                pass  # a pooled connection to the old server; the next try reconnects
            else:
                # A hub that lost the layer again closes the socket instead.
                with contextlib.suppress(TimeoutError):
                    await wait_for(
                        lambda socket_=again: socket_.messages() or socket_.closed,
                        timeout=3,
                    )
            await hub.leave(subscriber)
            if [m["event"]["id"] for m in again.messages()] == [n]:
                break
        else:
            pytest.fail("the hub never delivered again after Redis came back")
