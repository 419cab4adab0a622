"""Commit → handler start: deliveries POSTed at a steady rate to daphne, processed
inline (in the server process), by one webhooks_worker, or in the tasks mode by
django-tasks-db's db_worker (which polls its table every 0.1 s here: that interval
bounds its figures) on PostgreSQL; a handler notes when it starts (bench/noop).

    python -m bench.latency [--rate 20] [--seconds 10]

The exact commit time is not recorded by PostgreSQL here, so two bounds are shown:
from the event's ``received_at`` (stamped when the request arrived, before the
commit: an upper bound) and from the 2xx answer (sent after the commit: a lower
bound). The target applies to the upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.servers import ROOT, Postgres, Project

SECRET = "bench-secret"
#: Commit → handler start p99 targets; the tasks mode is reported without one.
TARGET_P99_MS: dict[str, float | None] = {
    "inline": 100.0,
    "worker": 50.0,
    "tasks": None,
}


async def load(port: int, rate: float, count: int) -> dict[int, float]:
    """POST ``count`` deliveries at ``rate``/s; the Unix time each 2xx arrived, by event id."""
    answered: dict[int, float] = {}
    body = json.dumps({"zen": "x" * 1200}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    start = time.monotonic()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30
    ) as client:

        async def post(n: int) -> None:
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "bench.latency",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": signature,
            }
            response = await client.post(
                "/webhooks/bench/", content=body, headers=headers
            )
            if response.status_code == 200:
                answered[response.json()["id"]] = time.time()

        await asyncio.gather(*(post(n) for n in range(count)))
    return answered


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")  # fmt: skip


def measure(mode: str, rate: float, seconds: float) -> dict[str, Any]:
    """One daphne process (and one worker, or one db_worker) on a database of its own."""
    database = Postgres()
    database.create()
    with tempfile.TemporaryDirectory() as scratch:
        notes = Path(scratch) / "starts"
        notes.touch()
        project = Project(
            database.url,
            None,
            settings="bench.settings",
            WEBHOOKS_PROCESSING=mode,
            BENCH_LATENCY_FILE=str(notes),
            PYTHONUNBUFFERED="1",  # the worker's ready line, as it is written
        )
        worker = None
        try:
            project.manage("migrate", "--verbosity", "0")
            project.manage("webhooks_endpoint", "add", "bench", "--provider", "github", "--secret", SECRET)  # fmt: skip
            port = project.serve()
            if mode == "worker":
                worker = project.worker()
                assert worker.stdout is not None
                worker.stdout.readline()  # started and listening
            elif mode == "tasks":
                worker = subprocess.Popen(
                    [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay"],
                    cwd=ROOT, env=project.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                )  # fmt: skip
            asyncio.run(load(port, 5, 5))  # warm up: imports, connections, the runner
            time.sleep(1)
            notes.write_text("")
            count = int(rate * seconds)
            answered = asyncio.run(load(port, rate, count))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                lines = notes.read_text().splitlines()
                if len(lines) >= len(answered):
                    break
                time.sleep(0.2)
        finally:
            if worker is not None:
                worker.terminate()
                worker.communicate(timeout=60)
            project.stop_all()
            database.drop()
    upper, lower = [], []
    for line in lines:
        event_id, started, received = line.split()
        upper.append((float(started) - float(received)) * 1000)
        if int(event_id) in answered:
            lower.append((float(started) - answered[int(event_id)]) * 1000)
    return {
        "scenario": "latency",
        "mode": mode,
        "rate": rate,
        "seconds": seconds,
        "delivered": len(answered),
        "started": len(lines),
        "p50_ms": percentile(upper, 0.5),
        "p99_ms": percentile(upper, 0.99),
        "max_ms": max(upper, default=float("nan")),
        "after_2xx_p50_ms": percentile(lower, 0.5),
        "after_2xx_p99_ms": percentile(lower, 0.99),
        "target_p99_ms": TARGET_P99_MS[mode],
    }


def run(
    quick: bool, *, rate: float = 20, seconds: float | None = None
) -> list[dict[str, Any]]:
    """Inline, worker and tasks mode at ``rate`` deliveries/s (quick: 5 s each, else 20 s)."""
    seconds = seconds or (5 if quick else 20)
    rows = []
    for mode in ("inline", "worker", "tasks"):
        rows.append(measure(mode, rate, seconds))
        row = rows[-1]
        print(
            f"{mode}: received → handler start p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms "
            f"(2xx → start p50 {row['after_2xx_p50_ms']:.1f}, p99 {row['after_2xx_p99_ms']:.1f}); "
            f"{row['started']} of {row['delivered']} started",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    options = parser.parse_args()
    run(False, rate=options.rate, seconds=options.seconds)


if __name__ == "__main__":
    main()
