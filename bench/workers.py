"""Processing throughput: events/s completed by 1, 2 and 4 webhooks_worker processes
on PostgreSQL with a no-op handler, each figure the median of several runs.

    python -m bench.workers [--events 3000] [--runs 3] [--concurrency 4]

Throughput is measured from the database's own timestamps (first attempt
started to last event finished), so process start-up is not counted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.servers import Postgres, Project

RESULTS = Path(__file__).parent / "results"

CREATE = """
from django.utils import timezone
from webhooks.models import Endpoint, Event
from django.db import connection, transaction
endpoint, _ = Endpoint.objects.get_or_create(slug="bench", provider="none")
Event.objects.all().delete()
now = timezone.now()
with transaction.atomic():  # all at once, for workers already waiting
    Event.objects.bulk_create(
        (Event(endpoint=endpoint, provider="none", delivery_id=f"d{n}", event_type="tick",
               body=b"{}", payload={}, next_attempt_at=now) for n in range(COUNT)),
        batch_size=1000,
    )
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_notify('webhooks_events', '')")
"""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends(conn: psycopg.Connection[Any]) -> dict[int, float]:
    """CPU seconds of the server processes connected to this database, by pid."""
    pids = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    found = {}
    for (pid,) in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except OSError:  # gone since, or another machine's
            continue
    return found


def measure(
    project: Project, database: Postgres, workers: int, events: int, concurrency: int
) -> tuple[float, float, float]:
    """Events/s, and CPU milliseconds per event of the workers and of PostgreSQL."""
    processes = [
        project.worker("--concurrency", str(concurrency)) for _ in range(workers)
    ]
    url = database.url.replace("postgres://", "postgresql://")
    try:
        for process in processes:  # started: imports done, waiting for work
            assert process.stdout is not None
            process.stdout.readline()
        with psycopg.connect(url, autocommit=True) as conn:
            before = sum(cpu_seconds(process.pid) for process in processes)
            database_before = backends(conn)
            project.manage("shell", "-c", CREATE.replace("COUNT", str(events)))
            while (
                conn.execute(
                    "SELECT count(*) FROM webhooks_event WHERE status = 'succeeded'"
                ).fetchone()[0]
                < events
            ):
                time.sleep(0.2)
            started, finished = conn.execute(
                "SELECT (SELECT min(started_at) FROM webhooks_attempt), max(processed_at) FROM webhooks_event"
            ).fetchone()
            spent = sum(cpu_seconds(process.pid) for process in processes) - before
            database_spent = sum(
                seconds - database_before.get(pid, 0.0)
                for pid, seconds in backends(conn).items()
            )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.communicate(timeout=60)
    rate = events / (finished - started).total_seconds()
    return rate, spent * 1000 / events, database_spent * 1000 / events


def run(
    quick: bool,
    *,
    events: int | None = None,
    runs: int | None = None,
    concurrency: int = 4,
) -> list[dict[str, Any]]:
    """Rows of events/s for 1, 2 and 4 workers (quick: 1,000 events, one run each)."""
    events = events or (1000 if quick else 3000)
    runs = runs or (1 if quick else 3)
    database = Postgres()
    database.create()
    try:
        # Unbuffered: measure() reads the line a worker prints once it is ready.
        project = Project(
            database.url, None, settings="bench.settings", PYTHONUNBUFFERED="1"
        )
        project.manage("migrate", "--verbosity", "0")
        rows: list[dict[str, Any]] = []
        for workers in (1, 2, 4):
            figures = [
                measure(project, database, workers, events, concurrency)
                for _ in range(runs)
            ]
            rates = [rate for rate, _, _ in figures]
            rows.append(
                {
                    "scenario": "processing",
                    "workers": workers,
                    "events": events,
                    "runs": runs,
                    "median": statistics.median(rates),
                    "min": min(rates),
                    "max": max(rates),
                    # On two cores these bound the throughput of any number of workers.
                    "worker_cpu_ms": statistics.median(f[1] for f in figures),
                    "database_cpu_ms": statistics.median(f[2] for f in figures),
                }
            )
            print(
                f"{workers} worker(s): {rows[-1]['median']:8.1f} events/s  (runs: {', '.join(f'{r:.1f}' for r in rates)})",
                flush=True,
            )
    finally:
        database.drop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    options = parser.parse_args()
    rows = run(
        False,
        events=options.events,
        runs=options.runs,
        concurrency=options.concurrency,
    )
    base = rows[0]["median"]
    print("\nworkers  events/s (median)  spread         vs 1 worker")
    for row in rows:
        print(
            f"{row['workers']:>7}  {row['median']:>17.1f}  {row['min']:.1f}-{row['max']:.1f}  {row['median'] / base:>10.2f}x"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%S")
    report = {
        "scenario": "processing throughput, no-op handler, PostgreSQL",
        "events": options.events,
        "runs": options.runs,
        "concurrency": options.concurrency,
        "machine": {
            "python": platform.python_version(),
            "cpus": subprocess.run(
                ["nproc"], capture_output=True, text=True
            ).stdout.strip(),
        },
        "results": rows,
    }
    (RESULTS / f"{stamp}-workers.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
