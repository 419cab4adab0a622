"""Soak: N signed deliveries at a steady rate into one daphne server, with a worker
processing them and 100 dashboards connected over Redis, sampling the resident
memory (RSS) of the server and the worker every few seconds.

    python -m bench.soak [--deliveries 100000] [--rate 150] [--dashboards 100]

Reports the RSS curve, and what was lost (a 2xx without a row), duplicated (more
than one row for a delivery id), and missing on any dashboard once it has
resumed. Not part of make test or make bench (make soak): a full run takes about
15 minutes on two idle cores.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException
from websockets.typing import Origin

from tests.servers import Postgres, Project, Redis

SECRET = "soak-secret"


class Dashboard:
    """The live page's behaviour (reconnect, resume after a gap), holding only ids."""

    def __init__(self, port: int, session: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws/webhooks/"
        self.origin = Origin(f"http://127.0.0.1:{port}")
        self.headers = {"Cookie": f"sessionid={session}"}
        self.seen = bytearray()
        self.last_id = 0
        self.connections = 0
        self.socket: Any = None
        self.swept = asyncio.Event()

    def holds(self, event_id: int) -> bool:
        return event_id < len(self.seen) and self.seen[event_id] == 1

    def _mark(self, event_id: int) -> None:
        if event_id >= len(self.seen):
            self.seen.extend(bytes(event_id + 1024 - len(self.seen)))
        self.seen[event_id] = 1
        self.last_id = max(self.last_id, event_id)

    async def run(self) -> None:
        while True:
            try:
                async with connect(
                    self.url,
                    origin=self.origin,
                    additional_headers=self.headers,
                    max_queue=None,
                ) as socket:
                    self.connections += 1
                    self.socket = socket
                    async for frame in socket:
                        await self._handle(socket, json.loads(frame))
            except (OSError, WebSocketException):
                pass
            await asyncio.sleep(0.5)

    async def _handle(self, socket: Any, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "batch":
            for inner in message["messages"]:
                await self._handle(socket, inner)
        elif kind == "snapshot":
            previous = self.last_id
            for event in message["events"]:
                self._mark(event["id"])
            if previous:
                await self.resume(socket, previous)
        elif kind == "resumed":
            for event in message["events"]:
                self._mark(event["id"])
            if not message["complete"]:
                # Go on from where this page of events ended, not from the newest
                # id held: an older one may still be missing.
                await self.resume(socket, max(e["id"] for e in message["events"]))
            else:
                self.swept.set()
        elif kind == "event.received":
            previous = self.last_id
            self._mark(message["event"]["id"])
            if message["event"]["id"] > previous + 1:
                await self.resume(socket, previous)

    async def resume(self, socket: Any, after_id: int) -> None:
        await socket.send(json.dumps({"type": "resume", "after_id": after_id}))

    def missing(self, ids: list[int]) -> int:
        return sum(not self.holds(i) for i in ids)

    async def sweep(self, after_id: int) -> None:
        """Resume from before the first delivery, as a page reloaded after the run would."""
        self.swept.clear()
        await self.resume(self.socket, after_id)
        # Frames pushed earlier may still wait in this client's buffer: be patient.
        await asyncio.wait_for(self.swept.wait(), 1800)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def sample(
    pids: dict[str, int], every: float, curve: list[dict[str, Any]]
) -> None:
    started = time.monotonic()
    while True:
        row: dict[str, Any] = {"t": round(time.monotonic() - started)}
        row.update({name: rss_kib(pid) // 1024 for name, pid in pids.items()})
        curve.append(row)
        await asyncio.sleep(every)


async def send(
    port: int, deliveries: int, rate: float, progress: list[int]
) -> dict[str, int]:
    """Post every delivery once at ``rate``; re-send until each gets a 2xx, as providers do."""
    acknowledged: dict[str, int] = {}
    start = time.monotonic()
    limit = asyncio.Semaphore(32)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30
    ) as client:

        async def post(n: int) -> None:
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            delivery = f"soak-{n}"
            body = json.dumps({"delivery": delivery, "ref": "refs/heads/main"}).encode()
            digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": f"sha256={digest}",
            }
            for attempt in range(20):
                async with limit:
                    try:
                        response = await client.post(
                            "/webhooks/soak/", content=body, headers=headers
                        )
                    except httpx.HTTPError:
                        response = None
                if response is not None and response.status_code == 200:
                    acknowledged[delivery] = int(response.json()["id"])
                    progress[0] += 1
                    return
                await asyncio.sleep(min(2**attempt * 0.1, 5))

        await asyncio.gather(*(post(n) for n in range(deliveries)))
    return acknowledged


async def soak(options: argparse.Namespace) -> dict[str, Any]:
    database, redis = Postgres(), Redis()
    database.create()
    redis.start()
    project = Project(database.url, redis.url, WEBHOOKS_PROCESSING="worker")
    curve: list[dict[str, Any]] = []
    try:
        await asyncio.to_thread(project.manage, "migrate", "--verbosity", "0")
        await asyncio.to_thread(
            project.manage,
            "webhooks_endpoint", "add", "soak", "--provider", "github", "--secret", SECRET,
        )  # fmt: skip
        session = await asyncio.to_thread(project.staff_session)
        port = project.serve()
        worker = project.worker("--concurrency", "4")
        pids = {"server_mib": project.servers[port].pid, "worker_mib": worker.pid}
        boards = [Dashboard(port, session) for _ in range(options.dashboards)]
        tasks = [asyncio.create_task(board.run()) for board in boards]
        while not all(board.connections for board in boards):
            await asyncio.sleep(0.1)
        sampler = asyncio.create_task(sample(pids, options.every, curve))
        progress = [0]
        reporter = asyncio.create_task(report_progress(progress, options.deliveries))
        started = time.monotonic()
        acknowledged = await send(port, options.deliveries, options.rate, progress)
        elapsed = time.monotonic() - started
        reporter.cancel()
        # Let the last frames arrive, then count what the pushes (and the resumes
        # their gaps caused) missed; then a full resume must leave nothing missing.
        ids = sorted(acknowledged.values())
        await asyncio.sleep(10)
        missed_live = max((board.missing(ids) for board in boards), default=0)
        await asyncio.gather(*(board.sweep(ids[0] - 1) for board in boards))
        missing = max((board.missing(ids) for board in boards), default=0)
        sampler.cancel()
        curve.append(
            {
                "t": round(time.monotonic() - started),
                **{k: rss_kib(p) // 1024 for k, p in pids.items()},
            }
        )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        worker.terminate()
        worker.communicate(timeout=60)
    finally:
        project.stop_all()
        redis.kill()
    try:
        with psycopg.connect(
            database.url.replace("postgres://", "postgresql://")
        ) as conn:
            rows: dict[str, int] = dict(
                conn.execute(
                    "SELECT delivery_id, count(*) FROM webhooks_event GROUP BY 1"
                ).fetchall()
            )
    finally:
        database.drop()
    return {
        "deliveries": options.deliveries,
        "rate": options.rate,
        "achieved_rate": round(len(acknowledged) / elapsed, 1),
        "dashboards": options.dashboards,
        "acknowledged": len(acknowledged),
        "lost": sum(delivery not in rows for delivery in acknowledged),
        "duplicated": sum(count - 1 for count in rows.values()),
        "missed_live_on_a_dashboard_max": missed_live,
        "missing_after_resume_max": missing,
        "reconnections_max": max((b.connections - 1 for b in boards), default=0),
        "rss_curve": curve,
    }


async def report_progress(progress: list[int], total: int) -> None:
    while True:
        await asyncio.sleep(10)
        print(f"  {progress[0]}/{total} acknowledged", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=150, help="deliveries per second")
    parser.add_argument("--dashboards", type=int, default=100)
    parser.add_argument(
        "--every", type=float, default=5, help="seconds between RSS samples"
    )
    result = asyncio.run(soak(parser.parse_args()))
    curve = result.pop("rss_curve")
    for name, value in result.items():
        print(f"{name:>28}: {value}")
    print("\n     t (s)  server RSS (MiB)  worker RSS (MiB)")
    for row in curve:
        print(f"{row['t']:>10}  {row['server_mib']:>16}  {row['worker_mib']:>16}")


if __name__ == "__main__":
    main()
