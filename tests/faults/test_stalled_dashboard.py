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


async def settled(first: Dashboard, second: Dashboard, ids: set[int]) -> None:
    async with asyncio.timeout(30):
        while first.pushed & ids != second.pushed & ids:
            await asyncio.sleep(0.1)


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
            # Frames still on their way (the worker's status changes) reach the two
            # sockets at slightly different moments: compare once both have settled.
            with contextlib.suppress(TimeoutError):
                await settled(first, second, acknowledged)
            first_live = first.pushed & acknowledged
            second_live = second.pushed & acknowledged
            pushed = (len(first_live), len(second_live))
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
    # The frozen socket cost the others nothing: the hub sent both healthy pages the
    # same live frames, every one of them. (What never reached the hub, a broadcast
    # dropped at its time bound (logged) or by the layer's capacity, both fill in
    # by resume, as holds() above proved.)
    dropped = log.count("Dashboard broadcast dropped")
    figures = (
        f"{len(acknowledged)} acknowledged, pushed live {pushed}, {dropped} dropped"
    )
    assert acknowledged, figures
    assert first_live == second_live, figures
    assert first_live, figures
