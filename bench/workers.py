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
endpoint, _ = Endpoint.objects.get_or_create(slug="bench", provider="none")
Event.objects.all().delete()
now = timezone.now()
Event.objects.bulk_create(
    (Event(endpoint=endpoint, provider="none", delivery_id=f"d{n}", event_type="tick",
           body=b"{}", payload={}, next_attempt_at=now) for n in range(COUNT)),
    batch_size=1000,
)
"""


def measure(
    project: Project, database: Postgres, workers: int, events: int, concurrency: int
) -> float:
    project.manage("shell", "-c", CREATE.replace("COUNT", str(events)))
    processes = [
        project.worker("--concurrency", str(concurrency)) for _ in range(workers)
    ]
    url = database.url.replace("postgres://", "postgresql://")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
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
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.communicate(timeout=60)
    return events / (finished - started).total_seconds()


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
        project = Project(database.url, None, settings="bench.settings")
        project.manage("migrate", "--verbosity", "0")
        rows: list[dict[str, Any]] = []
        for workers in (1, 2, 4):
            rates = [
                measure(project, database, workers, events, concurrency)
                for _ in range(runs)
            ]
            rows.append(
                {
                    "scenario": "processing",
                    "workers": workers,
                    "events": events,
                    "runs": runs,
                    "median": statistics.median(rates),
                    "min": min(rates),
                    "max": max(rates),
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
