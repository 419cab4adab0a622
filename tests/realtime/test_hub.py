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


class RecordingWriter:
    """Stands in for a server connection the hub writes frames to directly."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.written: list[bytes] = []
        self.blocked = blocked

    def write(self, frame: bytes) -> bool:
        self.written.append(frame)
        return True


def text_of(frame: bytes) -> dict[str, Any]:
    """Decode a server frame with the websockets package's own parser."""
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(frame)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as done:
        next(parser)
    parsed = done.value.value
    assert parsed.opcode is Opcode.TEXT and parsed.fin
    assert not reader.buffer  # nothing after the frame
    return json.loads(parsed.data)


@override_settings(REALTIME_TICK_SECONDS=0)
async def test_frames_go_to_each_connection_as_the_very_same_bytes() -> None:
    from channels.layers import InMemoryChannelLayer

    one = hub.Hub(InMemoryChannelLayer())
    await one.start()
    sockets = [RecordingSocket() for _ in range(3)]
    writers = [RecordingWriter() for _ in sockets]
    for socket_, writer in zip(sockets, writers, strict=True):
        one.add(socket_, None, writer).start()
    one.publish({"type": "event.received", "event": {"id": 7}})
    await wait_for(lambda: all(w.written for w in writers))
    assert all(w.written[0] is writers[0].written[0] for w in writers)
    assert text_of(writers[0].written[0]) == {
        "type": "event.received",
        "event": {"id": 7},
    }
    assert all(s.frames == [] for s in sockets)  # never through the ASGI send
    await one.stop()


@override_settings(REALTIME_TICK_SECONDS=0, REALTIME_SOCKET_QUEUE_FRAMES=3)
async def test_a_full_connection_holds_frames_in_order_then_is_closed() -> None:
    from channels.layers import InMemoryChannelLayer

    one = hub.Hub(InMemoryChannelLayer())
    await one.start()
    socket_, writer = RecordingSocket(), RecordingWriter(blocked=True)
    subscriber = one.add(socket_, None, writer)
    subscriber.start()
    for n in range(2):
        one.publish({"type": "event.received", "event": {"id": n}})
        await asyncio.sleep(0.02)
    assert writer.written == []
    writer.blocked = False  # it drained: held frames go, in order
    await wait_for(lambda: len(writer.written) == 2)
    assert [text_of(f)["event"]["id"] for f in writer.written] == [0, 1]
    writer.blocked = True  # the page froze
    for n in range(2, 8):
        one.publish({"type": "event.received", "event": {"id": n}})
        await asyncio.sleep(0.02)
    await wait_for(lambda: socket_.closed is not None)
    assert socket_.closed == hub.CLOSE_TOO_SLOW
    assert len(writer.written) == 2
    assert subscriber.queue.qsize() <= 3
    await subscriber.stop()
    await one.stop()


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    REALTIME_TICK_SECONDS=0,
)
async def test_a_message_published_in_this_process_skips_the_layer() -> None:
    from channels.layers import get_channel_layer

    from realtime import broadcast

    recording = RecordingSocket()
    subscriber = await hub.join(recording)
    subscriber.start()
    here = hub._hubs[asyncio.get_running_loop()]
    # From another thread (a worker thread of the server) and from the loop itself.
    await asyncio.to_thread(
        broadcast.publish, {"type": "event.received", "event": {"id": 1}}
    )
    broadcast.publish({"type": "event.received", "event": {"id": 2}})
    await wait_for(lambda: len(recording.messages()) == 2)
    assert [m["event"]["id"] for m in recording.messages()] == [1, 2]
    layer = get_channel_layer()
    assert layer.channels[here.channel].qsize() == 0  # nothing went through the layer
    await hub.leave(subscriber)


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    REALTIME_TICK_SECONDS=0,
)
async def test_the_layer_copy_of_a_message_from_this_process_is_skipped() -> None:
    from channels.layers import get_channel_layer

    recording = RecordingSocket()
    subscriber = await hub.join(recording)
    subscriber.start()
    layer = get_channel_layer()
    envelope = {"type": HUB_MESSAGE, "message": {"type": "event.received"}}
    await layer.group_send("webhooks.live", {**envelope, "origin": hub.PROCESS})
    await layer.group_send("webhooks.live", {**envelope, "origin": "another"})
    await wait_for(lambda: len(recording.messages()) == 1)
    await asyncio.sleep(0.1)
    assert len(recording.messages()) == 1
    await hub.leave(subscriber)


async def test_with_redis_a_local_message_reaches_the_hub_once(private_redis) -> None:
    from realtime import broadcast

    port, _ = private_redis
    config = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
        }
    }
    with override_settings(CHANNEL_LAYERS=config, REALTIME_TICK_SECONDS=0):
        from channels.layers import get_channel_layer

        recording = RecordingSocket()
        subscriber = await hub.join(recording)
        subscriber.start()
        sent_before = broadcast.stats["sent"]
        broadcast.publish({"type": "event.received", "event": {"id": 1}})
        await wait_for(lambda: broadcast.stats["sent"] == sent_before + 1)
        # Another process's message arrives through Redis.
        await publish(get_channel_layer(), 2)
        await wait_for(lambda: len(recording.messages()) == 2)
        await asyncio.sleep(0.3)
        assert [m["event"]["id"] for m in recording.messages()] == [1, 2]
        await hub.leave(subscriber)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_db_connections")
@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
)
async def test_sockets_joining_together_share_one_snapshot_until_a_message() -> None:
    from asgiref.sync import sync_to_async

    from tests.factories import make_endpoint, make_event

    endpoint = await sync_to_async(make_endpoint)()
    first_event = await sync_to_async(make_event)(endpoint)
    subscribers = [await hub.join(RecordingSocket()) for _ in range(3)]
    snapshots = await asyncio.gather(*(hub.snapshot() for _ in subscribers))
    assert all(frame is snapshots[0][1] for _, frame in snapshots)  # read once
    latest, frame = snapshots[0]
    assert latest == first_event.pk
    assert [e["id"] for e in json.loads(frame.text)["events"]] == [first_event.pk]
    # A message means the snapshot may be stale: the next socket reads again.
    second_event = await sync_to_async(make_event)(endpoint, "d-2")
    hub._hubs[asyncio.get_running_loop()].publish({"type": "event.received"})
    latest, again = await hub.snapshot()
    assert again is not frame
    assert latest == second_event.pk
    for subscriber in subscribers:
        await hub.leave(subscriber)
