"""End to end with real processes: daphne servers sharing PostgreSQL and Redis, and a
dashboard client that behaves as the page does (reconnect, resume, merge by id)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from tests.servers import Postgres, Project, Redis, post_github

SECRET = "s3cret"

pytestmark = pytest.mark.postgres


@pytest.fixture
def stack() -> Iterator[tuple[Project, Redis]]:
    database, redis = Postgres(), Redis()
    database.create()
    redis.start()
    project = Project(database.url, redis.url)
    try:
        project.manage("migrate", "--verbosity", "0")
        project.manage(
            "webhooks_endpoint", "add", "gh", "--provider", "github", "--secret", SECRET
        )
        yield project, redis
    finally:
        project.stop_all()
        redis.kill()
        database.drop()


class Dashboard:
    """What the live page does, in Python: hold events by id, resume after every gap."""

    def __init__(self, port: int, session: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws/webhooks/"
        self.headers = {"Cookie": f"sessionid={session}"}
        self.origin = f"http://127.0.0.1:{port}"
        self.events: dict[int, dict[str, Any]] = {}
        self.pushed: set[int] = set()
        self.connections = 0
        #: Snapshots received: the server's hub is in its group once the first arrives.
        self.snapshots = 0
        self.task: asyncio.Task[None] | None = None

    @property
    def last_id(self) -> int:
        return max(self.events, default=0)

    async def __aenter__(self) -> Dashboard:
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _run(self) -> None:
        while True:
            try:
                async with connect(
                    self.url, origin=self.origin, additional_headers=self.headers
                ) as socket:
                    self.connections += 1
                    async for frame in socket:
                        await self._handle(socket, json.loads(frame))
            except (OSError, WebSocketException):
                pass
            await asyncio.sleep(0.2)

    async def _handle(self, socket: Any, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "batch":
            for inner in message["messages"]:
                await self._handle(socket, inner)
        elif kind == "snapshot":
            self.snapshots += 1
            resume_from = self.last_id
            self._merge(message["events"])
            if resume_from:
                await socket.send(
                    json.dumps({"type": "resume", "after_id": resume_from})
                )
        elif kind == "resumed":
            self._merge(message["events"])
            if not message["complete"]:
                await socket.send(
                    json.dumps({"type": "resume", "after_id": self.last_id})
                )
        elif kind in ("event.received", "event.updated"):
            event = message["event"]
            gap = event["id"] > self.last_id + 1
            previous = self.last_id
            self.pushed.add(event["id"])
            self._merge([event])
            if gap:
                await socket.send(json.dumps({"type": "resume", "after_id": previous}))

    def _merge(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.events[event["id"]] = event

    async def holds(self, ids: set[int], timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not ids <= set(self.events):
                await asyncio.sleep(0.05)


async def post(port: int, n: int) -> int:
    answer = await asyncio.to_thread(post_github, port, "gh", SECRET, {"n": n})
    assert answer["http_status"] == 200, answer
    return int(answer["id"])


@pytest.mark.asyncio
async def test_delivery_to_one_server_reaches_a_dashboard_on_another(stack) -> None:
    project, _ = stack
    session = await asyncio.to_thread(project.staff_session)
    first, second = project.serve(), project.serve()
    async with Dashboard(second, session) as dashboard:
        # The consumer sends its snapshot after the hub joined the layer's group,
        # so from then on a delivery anywhere is pushed here.
        async with asyncio.timeout(20):
            while dashboard.snapshots == 0:
                await asyncio.sleep(0.05)
        event_id = await post(first, 1)
        await dashboard.holds({event_id})
        assert event_id in dashboard.pushed  # pushed live, not found by a resume


@pytest.mark.asyncio
async def test_redis_restart_loses_nothing_once_the_dashboard_resumes(stack) -> None:
    project, redis = stack
    session = await asyncio.to_thread(project.staff_session)
    port = project.serve()
    async with Dashboard(port, session) as dashboard:
        before = {await post(port, n) for n in range(3)}
        await dashboard.holds(before)

        redis.kill()
        # Ingest does not depend on Redis: every delivery is stored and answered 200.
        during = {await post(port, n) for n in range(3, 8)}
        redis.start()
        after = {await post(port, n) for n in range(8, 10)}

        try:
            await dashboard.holds(before | during | after)
        except TimeoutError:
            held = sorted(dashboard.events)
            pytest.fail(
                f"dashboard holds {held} after {dashboard.connections} connection(s)\n{project.log(port)[-3000:]}"
            )
        assert set(dashboard.events) == before | during | after
        assert (
            dashboard.connections >= 2
        )  # the hub closed the socket; the client came back


def serve(project: Project, server: str) -> int:
    """The project under daphne (as Project.serve) or uvicorn, one process."""
    if server == "daphne":
        return project.serve()
    import subprocess
    import tempfile

    from tests.servers import BIN, ROOT, free_port, wait_for_port

    port = free_port()
    project.logs[port] = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed by kill())
    project.servers[port] = subprocess.Popen(
        [str(BIN / "uvicorn"), "project.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--lifespan", "off", "--log-level", "warning"],
        cwd=ROOT, env=project.env, stdout=subprocess.DEVNULL, stderr=project.logs[port],
    )  # fmt: skip
    wait_for_port(port)
    return port


@pytest.mark.asyncio
@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
async def test_hub_frames_reach_a_compressing_client_under_each_server(
    stack, server: str
) -> None:
    # The hub writes its frames to the connection itself, uncompressed; a client
    # that negotiated permessage-deflate (as browsers do) must read them all.
    project, _ = stack
    session = await asyncio.to_thread(project.staff_session)
    port = serve(project, server)
    async with connect(
        f"ws://127.0.0.1:{port}/ws/webhooks/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": f"sessionid={session}"},
        compression="deflate",
    ) as socket:
        kinds = [json.loads(await socket.recv())["type"] for _ in range(2)]
        assert kinds == ["hello", "snapshot"]
        if server == "uvicorn":
            assert socket.protocol.extensions  # compression is on
        ids = {await post(port, n) for n in range(5)}
        pushed: set[int] = set()
        async with asyncio.timeout(30):
            while not ids <= pushed:
                message = json.loads(await socket.recv())
                inner = message["messages"] if message["type"] == "batch" else [message]
                pushed |= {
                    m["event"]["id"] for m in inner if m["type"] == "event.received"
                }
        # One send path for the consumer's own answers too, in order with the hub's.
        await socket.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(30):
            while json.loads(await socket.recv())["type"] != "pong":
                pass
