"""Live fan-out: deliveries POSTed at a steady rate to one daphne process while N
dashboards are connected; reports POST → ``event.received`` latency and what each
dashboard had to recover with ``resume`` (which must leave nothing missing).

    python -m bench.fanout --dashboards 100 --rate 200 --seconds 10 [--redis]

Load and dashboards run in this process, the server in another (the machine's two
cores are shared, so compare figures from the same run only).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.servers import Postgres, Project, Redis

SECRET = "bench-secret"


class Dashboard:
    def __init__(self, url: str, origin: str, session: str) -> None:
        self.url, self.origin, self.session = url, origin, session
        self.seen: dict[int, float] = {}
        self.ready = asyncio.Event()
        self.resumed = asyncio.Event()
        self.socket: Any = None

    async def run(self) -> None:
        headers = {"Cookie": f"sessionid={self.session}"}
        async with connect(
            self.url, origin=self.origin, additional_headers=headers, max_queue=None
        ) as socket:
            self.socket = socket
            async for frame in socket:
                now = time.monotonic()
                message = json.loads(frame)
                for item in (
                    message["messages"] if message["type"] == "batch" else [message]
                ):
                    if item["type"] == "snapshot":
                        self.ready.set()
                    elif item["type"] == "event.received":
                        self.seen.setdefault(item["event"]["id"], now)
                    elif item["type"] == "resumed":
                        for event in item["events"]:
                            self.seen.setdefault(
                                event["id"], -1.0
                            )  # recovered, not pushed
                        self.resumed.set()

    async def resume(self, after_id: int) -> None:
        self.resumed = asyncio.Event()
        await self.socket.send(json.dumps({"type": "resume", "after_id": after_id}))
        await asyncio.wait_for(self.resumed.wait(), 30)


async def load(port: int, rate: float, seconds: float) -> dict[int, float]:
    sent: dict[int, float] = {}
    body = json.dumps({"zen": "x" * 1200}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    start = time.monotonic()
    total = int(rate * seconds)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30
    ) as client:

        async def post(n: int) -> None:
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": signature,
            }
            at = time.monotonic()
            response = await client.post(
                "/webhooks/bench/", content=body, headers=headers
            )
            if response.status_code == 200:
                sent[response.json()["id"]] = at

        await asyncio.gather(*(post(n) for n in range(total)))
    return sent


async def scenario(
    port: int, session: str, dashboards: int, rate: float, seconds: float
) -> dict[str, Any]:
    boards = [
        Dashboard(
            f"ws://127.0.0.1:{port}/ws/webhooks/", f"http://127.0.0.1:{port}", session
        )
        for _ in range(dashboards)
    ]
    tasks = [asyncio.create_task(board.run()) for board in boards]
    await asyncio.gather(
        *(asyncio.wait_for(board.ready.wait(), 60) for board in boards)
    )
    sent = await load(port, rate, seconds)
    await asyncio.sleep(2)  # let the last frames arrive
    first = min(sent) - 1
    pushed_missing = [
        len(set(sent) - {i for i, t in board.seen.items() if t > 0}) for board in boards
    ]
    await asyncio.gather(*(board.resume(first) for board in boards))
    missing_after_resume = [len(set(sent) - set(board.seen)) for board in boards]
    latencies = sorted(
        t - sent[i]
        for board in boards
        for i, t in board.seen.items()
        if t > 0 and i in sent
    )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    def pct(p: float) -> float:
        return (
            1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))]
            if latencies
            else float("nan")
        )

    return {
        "dashboards": dashboards,
        "rate": rate,
        "seconds": seconds,
        "delivered": len(sent),
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "pushed_missing_max": max(pushed_missing),
        "missing_after_resume": max(missing_after_resume),
    }


# (dashboards, deliveries/s): the targets, and the quick subset.
PAIRS = [(1, 50), (1, 200), (10, 50), (100, 50), (100, 200), (1000, 50)]
QUICK_PAIRS = [(10, 50), (100, 200)]


def measure(
    pairs: Sequence[tuple[int, float]], seconds: float, use_redis: bool
) -> list[dict[str, Any]]:
    """One daphne process, one layer: a row per (dashboards, rate)."""
    database, redis = Postgres(), Redis() if use_redis else None
    database.create()
    if redis:
        redis.start()
    project = Project(
        database.url, redis.url if redis else None, WEBHOOKS_PROCESSING="worker"
    )
    try:
        project.manage("migrate", "--verbosity", "0")
        project.manage(
            "webhooks_endpoint",
            "add",
            "bench",
            "--provider",
            "github",
            "--secret",
            SECRET,
        )
        session = project.staff_session()
        port = project.serve()
        rows = []
        for n, rate in pairs:
            row = asyncio.run(scenario(port, session, n, rate, seconds))
            rows.append({"scenario": "fanout", "layer": layer_name(use_redis), **row})
            print(format_row(rows[-1]), flush=True)
    finally:
        project.stop_all()
        if redis:
            redis.kill()
        database.drop()
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    """Quick: 10 dashboards at 50/s and 100 at 200/s, 3 s each, in-memory layer only."""
    if quick:
        return measure(QUICK_PAIRS, 3, use_redis=False)
    return measure(PAIRS, 10, use_redis=False) + measure(PAIRS, 10, use_redis=True)


def layer_name(use_redis: bool) -> str:
    return "redis" if use_redis else "in-memory"


def format_row(row: dict[str, Any]) -> str:
    return f"{row['layer']:>16}{row['dashboards']:>10}  {row['rate']:>6.0f}  {row['delivered']:>9}  {row['p50_ms']:>6.1f}  {row['p95_ms']:>6.1f}  {row['p99_ms']:>6.1f}  {row['pushed_missing_max']:>17}  {row['missing_after_resume']:>20}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dashboards", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--rate", type=float, nargs="+", default=[50, 200])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--redis",
        action="store_true",
        help="channels_redis instead of the in-memory layer",
    )
    options = parser.parse_args()
    pairs = [(n, rate) for n in options.dashboards for rate in options.rate]
    rows = measure(pairs, options.seconds, options.redis)
    print(
        "\n           layer  dashboards  rate/s  delivered  p50 ms  p95 ms  p99 ms  missed live (max)  missing after resume"
    )
    for row in rows:
        print(format_row(row))


if __name__ == "__main__":
    main()
