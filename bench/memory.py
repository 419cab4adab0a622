"""Memory: resident set size of the server (daphne) and of one webhooks_worker after
1,000 deliveries and after 100,000 (quick: 20,000), to show it stays flat.

    python -m bench.memory [--deliveries 100000]

wrk POSTs signed Stripe deliveries (bench/wrk/stripe.lua, a pool pre-signed
here) to daphne in worker mode on PostgreSQL, while one worker processes them
with a no-op handler. Each process is sampled once its own count (stored, or
processed) passes the mark.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from tests.servers import Postgres, Project

SECRET = "whsec_memory_" + "0" * 32
SCRIPT = Path(__file__).parent / "wrk" / "stripe.lua"
FIRST_MARK = 1000
#: Largest growth between the two marks that still counts as flat.
TARGET_GROWTH = 0.10


def write_pool(path: Path, count: int) -> None:
    """``count`` Stripe deliveries with unique event ids, in stripe.lua's pool format."""
    intent = {"id": "pi_memory", "object": "payment_intent", "amount": 4200,
              "description": "Order " + "x" * 1200}  # fmt: skip
    event = {"id": "@ID@", "object": "event", "type": "charge.updated",
             "data": {"object": intent}}  # fmt: skip
    prefix, suffix = json.dumps(event).split("@ID@")
    stamp, run = str(int(time.time())), uuid.uuid4().hex[:8]
    lines = [prefix, suffix]
    for n in range(count):
        event_id = f"evt_{run}{n:07d}"
        signed = f"{stamp}.{prefix}{event_id}{suffix}".encode()
        digest = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        lines.append(f"{event_id} t={stamp},v1={digest}")
    path.write_text("\n".join(lines) + "\n")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def measure(deliveries: int) -> list[dict[str, Any]]:
    database = Postgres()
    database.create()
    project = Project(database.url, None, settings="bench.settings", WEBHOOKS_PROCESSING="worker")  # fmt: skip
    url = database.url.replace("postgres://", "postgresql://")
    worker = load = None
    rss: dict[str, dict[int, float]] = {"server": {}, "worker": {}}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        pool = Path(scratch) / "pool"
        # More than needed: wrk keeps sending until the count is read and it is stopped.
        write_pool(pool, deliveries + 5000)
        try:
            project.manage("migrate", "--verbosity", "0")
            project.manage("webhooks_endpoint", "add", "bench", "--provider", "stripe",
                           "--secret", SECRET, "--tolerance", "86400")  # fmt: skip
            port = project.serve()
            server = project.servers[port].pid
            worker = project.worker("--concurrency", "4")
            load = subprocess.Popen(
                ["wrk", "-t2", "-c16", "-d3600s", "--timeout", "10s", "-s", str(SCRIPT),
                 f"http://127.0.0.1:{port}/webhooks/bench/"],
                env={**os.environ, "BENCH_POOL": str(pool), "BENCH_THREADS": "2"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            progress, moved = 0, time.monotonic()
            with psycopg.connect(url, autocommit=True) as conn:
                while len(rss["worker"]) < 2:
                    stored, done = conn.execute(
                        "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded') FROM webhooks_event"
                    ).fetchone() or (0, 0)
                    for mark in (FIRST_MARK, deliveries):
                        if stored >= mark and mark not in rss["server"]:
                            rss["server"][mark] = rss_mib(server)
                        if done >= mark and mark not in rss["worker"]:
                            rss["worker"][mark] = rss_mib(worker.pid)
                    if stored >= deliveries and load.poll() is None:
                        load.terminate()
                    if done > progress:
                        progress, moved = done, time.monotonic()
                    elif time.monotonic() - moved > 120:
                        raise TimeoutError(
                            f"stuck at {stored} stored, {done} processed"
                        )
                    time.sleep(0.5)
        finally:
            for process in (load, worker):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.communicate(timeout=60)
            project.stop_all()
            database.drop()
    rows = []
    for process, marks in rss.items():
        first, last = marks[FIRST_MARK], marks[deliveries]
        rows.append(
            {
                "scenario": "memory",
                "process": process,
                "deliveries": deliveries,
                "first_mark": FIRST_MARK,
                "rss_first_mib": first,
                "rss_last_mib": last,
                "growth": last / first - 1,
                "target_growth": TARGET_GROWTH,
                "seconds": time.monotonic() - started,
            }
        )
        print(
            f"{process}: {first:.1f} MiB after {FIRST_MARK:,}, {last:.1f} MiB after "
            f"{deliveries:,} ({last / first - 1:+.1%})",
            flush=True,
        )
    return rows


def run(quick: bool, *, deliveries: int | None = None) -> list[dict[str, Any]]:
    """Server and worker RSS after 1,000 and 100,000 deliveries (quick: 20,000)."""
    return measure(deliveries or (20_000 if quick else 100_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    run(False, deliveries=parser.parse_args().deliveries)


if __name__ == "__main__":
    main()
