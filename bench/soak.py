"""Soak: N signed deliveries at a steady rate into one daphne server, with a worker
processing them and 100 dashboards connected over Redis, sampling the resident
memory (RSS) of the server and the worker every few seconds.

    python -m bench.soak [--deliveries 100000 | --minutes 30] [--rate 150]
                         [--dashboards 100] [--every 5] [--warmup-minutes M]

Reports the RSS curve and whether each process's RSS stayed flat after warm-up
(no sample more than 10 % above the first one after it), and what was lost (a
2xx without a row), duplicated (more than one row for a delivery id), and
missing on any dashboard once it has resumed. Not part of make test or make
bench (make soak): 100,000 deliveries take about 15 minutes on two idle cores;
--minutes 30 sends for half an hour at the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import hmac
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException
from websockets.typing import Origin

from bench import report
from tests.servers import Postgres, Project, Redis

SECRET = "soak-secret"
#: RSS after warm-up may rise this much above its first sample and still be flat.
FLAT_WITHIN = 0.10


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

    def first_missing(self, ids: list[int]) -> int | None:
        return next((i for i in ids if not self.holds(i)), None)

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

        # Tasks are made on schedule, not all at once: a 30-minute run has
        # hundreds of thousands of deliveries. Those still waiting for their 2xx
        # (retries included) are bounded, as a provider's queue is.
        pending: set[asyncio.Task[None]] = set()
        open_slots = asyncio.Semaphore(1024)
        for n in range(deliveries):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            await open_slots.acquire()
            task = asyncio.create_task(post(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            task.add_done_callback(lambda _: open_slots.release())
        await asyncio.gather(*pending)
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
        reporter = asyncio.create_task(
            report_progress(progress, options.deliveries, curve)
        )
        started = time.monotonic()
        acknowledged = await send(port, options.deliveries, options.rate, progress)
        elapsed = time.monotonic() - started
        reporter.cancel()
        # Let the last frames arrive, then count what the pushes (and the resumes
        # their gaps caused) missed; then a full resume must leave nothing missing.
        ids = sorted(acknowledged.values())
        await asyncio.sleep(10)
        missed_live = max((board.missing(ids) for board in boards), default=0)
        # Each page resumes from before the first event it lacks, as a reloaded
        # page would from what it holds (from the start, a long run's 100 pages
        # would read every event a hundred times over).
        gaps = [(board, board.first_missing(ids)) for board in boards]
        await asyncio.gather(
            *(board.sweep(first - 1) for board, first in gaps if first is not None)
        )
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


async def report_progress(
    progress: list[int], total: int, curve: list[dict[str, Any]]
) -> None:
    while True:
        await asyncio.sleep(10)
        latest = curve[-1] if curve else {}
        print(
            f"  {progress[0]}/{total} acknowledged; RSS server "
            f"{latest.get('server_mib', '?')} MiB, worker "
            f"{latest.get('worker_mib', '?')} MiB",
            flush=True,
        )


def flatness(
    curve: list[dict[str, Any]], name: str, warmup_seconds: float
) -> tuple[str, str]:
    """Whether ``name``'s RSS stayed within FLAT_WITHIN of its first sample after warm-up."""
    after = [row[name] for row in curve if row["t"] >= warmup_seconds]
    if len(after) < 2:
        return "unknown", "too few samples after warm-up"
    base, peak, last = after[0], max(after), after[-1]
    growth = (peak - base) / base if base else 0.0
    verdict = "flat" if growth <= FLAT_WITHIN else "GROWING"
    return verdict, f"{base} -> peak {peak}, last {last} MiB ({growth:+.1%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument(
        "--minutes",
        type=float,
        help="send for this long at the rate (sets the number of deliveries)",
    )
    parser.add_argument("--rate", type=float, default=150, help="deliveries per second")
    parser.add_argument("--dashboards", type=int, default=100)
    parser.add_argument(
        "--every", type=float, default=5, help="seconds between RSS samples"
    )
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        help="RSS before this is warm-up (default: a sixth of the run)",
    )
    options = parser.parse_args()
    if options.minutes is not None:
        options.deliveries = max(1, round(options.minutes * 60 * options.rate))
    result = asyncio.run(soak(options))
    curve = result.pop("rss_curve")
    lines = [f"{name:>32}: {value}" for name, value in result.items()]
    warmup = (
        options.warmup_minutes * 60
        if options.warmup_minutes is not None
        else options.deliveries / options.rate / 6
    )
    for name in ("server_mib", "worker_mib"):
        verdict, detail = flatness(curve, name, warmup)
        label = f"{name.removesuffix('_mib')} RSS after {warmup:.0f} s warm-up"
        lines.append(f"{label:>32}: {verdict} within {FLAT_WITHIN:.0%}: {detail}")
    lines.append("\n     t (s)  server RSS (MiB)  worker RSS (MiB)")
    for row in curve:
        lines.append(
            f"{row['t']:>10}  {row['server_mib']:>16}  {row['worker_mib']:>16}"
        )
    print("\n".join(lines))
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    command = " ".join(["python -m bench.soak", *sys.argv[1:]])
    report.write_soak(
        f"{report.SOAK_HEADING}\n\nThe latest `{command}`, {stamp}"
        f" (load average at the end: {' '.join(map(str, os.getloadavg()))}).\n\n"
        "```\n" + "\n".join(lines) + "\n```\n"
    )
    print("\nWritten: bench/RESULTS.md (its soak section)")


if __name__ == "__main__":
    main()
