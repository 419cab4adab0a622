"""A dashboard that stops reading: the hub closes it with 4008, while ingest and the
other dashboards go on receiving every frame."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.faults.conftest import SECRET
from tests.faults.sender import Sender
from tests.realtime.test_scale_out import Dashboard
from tests.servers import Postgres, Project, Redis

pytestmark = pytest.mark.postgres


@pytest.fixture
def redis() -> Iterator[Redis]:
    redis = Redis()
    redis.start()
    yield redis
    redis.kill()


async def stalled(port: int, session: str) -> ClientConnection:
    """A socket whose page has frozen: it never reads, and its TCP window is tiny."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # Loopback's segments are 64 KiB, and the server's kernel sizes its send buffer
    # in segments (megabytes here); a small maximum segment, as on a real network
    # link, keeps that buffer small, so the server's own buffer fills sooner.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    raw.connect(("127.0.0.1", port))
    raw.setblocking(False)
    return await connect(
        f"ws://127.0.0.1:{port}/ws/webhooks/",
        sock=raw,
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": f"sessionid={session}"},
        max_queue=1,
        ping_interval=None,
    )


async def close_code(client: ClientConnection) -> int | None:
    """Read what the server sent, to its close frame."""
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(30):
            async for _ in client:
                pass
    return client.close_code


async def until_logged(project: Project, port: int, line: str) -> None:
    async with asyncio.timeout(60):
        while line not in project.log(port):
            await asyncio.sleep(0.2)


@pytest.mark.asyncio
async def test_a_dashboard_that_stops_reading_is_closed_and_slows_nobody(
    database: Postgres, redis: Redis
) -> None:
    project = Project(
        database.url,
        redis.url,
        settings="tests.settings_faults",
        WEBHOOKS_PROCESSING="worker",
    )
    await asyncio.to_thread(project.manage, "migrate", "--verbosity", "0")
    await asyncio.to_thread(
        project.manage,
        "webhooks_endpoint", "add", "gh", "--provider", "github", "--secret", SECRET,
    )  # fmt: skip
    session = await asyncio.to_thread(project.staff_session)
    port = project.serve()
    # Long ids and types make larger frames, and a worker adds two status changes
    # per event, so the frozen socket's buffers fill within seconds.
    sender = Sender(
        port, "gh", SECRET, threads=3, prefix="d" * 200, event_type="push" + "." * 200
    )
    worker = project.worker("--concurrency", "2")
    try:
        async with (
            Dashboard(port, session) as first,
            Dashboard(port, session) as second,
        ):
            async with asyncio.timeout(20):
                while not (first.connections and second.connections):
                    await asyncio.sleep(0.05)
            frozen = await stalled(port, session)
            sender.start()
            await until_logged(project, port, "frames behind; closing it (4008)")
            outcomes = await asyncio.to_thread(sender.stop)
            acknowledged = {o.event_id for o in outcomes if o.acknowledged}
            await first.holds(acknowledged, timeout=120)
            await second.holds(acknowledged, timeout=120)
            pushed = (
                len(first.pushed & acknowledged),
                len(second.pushed & acknowledged),
            )
            reconnections = (first.connections, second.connections)
            code = await close_code(frozen)
    finally:
        sender.stop()
        worker.terminate()
        worker.communicate(timeout=60)
        log = project.log(port)
        project.stop_all()

    assert {o.status for o in outcomes} == {200}, sender.summary()
    # Never closed: their queues never overflowed, so every frame reached them.
    assert reconnections == (1, 1)
    # The server closed it. The 4008 frame reaches a client that reads again before
    # the closing handshake times out; otherwise the connection is dropped (1006).
    assert code in (4008, 1006), log[-3000:]
    # A broadcast the layer could not take within its bound is dropped (logged), and
    # the page fills the gap with resume: report how many came live.
    dropped = log.count("Dashboard broadcast dropped")
    print(
        f"\n{len(acknowledged)} deliveries until the frozen dashboard was closed; "
        f"pushed live to the others: {pushed}; broadcasts dropped: {dropped}"
    )
