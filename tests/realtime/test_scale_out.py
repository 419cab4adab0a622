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
