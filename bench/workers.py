"""Processing throughput: events/s completed by 1, 2 and 4 webhooks_worker processes
on PostgreSQL with a no-op handler, by one django-tasks-db ``db_worker`` in the
tasks mode, and the drain of a 100,000-event backlog by one worker; each figure
the median of several runs, with the CPU per event of the processing processes
and of PostgreSQL (from /proc).

    python -m bench.workers [--events 3000] [--runs 3] [--concurrency 4] [--backlog 100000]

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
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.cpu import cpu_seconds
from tests.servers import ROOT, Postgres, Project

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
if MODE == "tasks":  # one task per event, as ingest enqueues them after commit
    from webhooks import tasks
    tasks.enqueue(Event.objects.order_by("id").values_list("id", flat=True))
"""


def settled(pid: int) -> None:
    """Wait until a starting process's imports are done: it uses under a tenth of a
    core (a db_worker polling every 0.1 s never stands quite still)."""
    last = cpu_seconds(pid)
    while True:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < 0.05:
            return
        last = now


def backends(conn: psycopg.Connection[Any]) -> dict[int, float]:
    """CPU seconds of the server processes connected to this database, by pid."""
    pids = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    found = {}
    for (pid,) in pids:
        if seconds := cpu_seconds(pid):  # 0.0: gone since, or another machine's
            found[pid] = seconds
    return found


def start(project: Project, mode: str, concurrency: int) -> subprocess.Popen[str]:
    """A webhooks_worker, or in the tasks mode django-tasks-db's db_worker."""
    if mode == "worker":
        return project.worker("--concurrency", str(concurrency))
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay"],
        cwd=ROOT, env=project.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def measure(
    project: Project,
    database: Postgres,
    workers: int,
    events: int,
    concurrency: int,
    mode: str = "worker",
) -> tuple[float, float, float]:
    """Events/s, and CPU milliseconds per event of the workers and of PostgreSQL."""
    processes = [start(project, mode, concurrency) for _ in range(workers)]
    url = database.url.replace("postgres://", "postgresql://")
    try:
        for process in processes:  # started: imports done, waiting for work
            if mode == "worker":
                assert process.stdout is not None
                process.stdout.readline()
            else:  # db_worker says nothing: ready once its CPU time stands still
                settled(process.pid)
        with psycopg.connect(url, autocommit=True) as conn:
            before = sum(cpu_seconds(process.pid) for process in processes)
            database_before = backends(conn)
            code = CREATE.replace("COUNT", str(events)).replace("MODE", repr(mode))
            project.manage("shell", "-c", code)
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


def row(
    label: str,
    mode: str,
    workers: int,
    events: int,
    figures: list[tuple[float, float, float]],
) -> dict[str, Any]:
    rates = [rate for rate, _, _ in figures]
    return {
        "scenario": "processing",
        "label": label,
        "mode": mode,
        "workers": workers,
        "events": events,
        "runs": len(figures),
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        # On two cores these bound the throughput of any number of workers.
        "worker_cpu_ms": statistics.median(f[1] for f in figures),
        "database_cpu_ms": statistics.median(f[2] for f in figures),
    }


def run(
    quick: bool,
    *,
    events: int | None = None,
    runs: int | None = None,
    concurrency: int = 4,
    backlog: int | None = None,
) -> list[dict[str, Any]]:
    """Rows for 1, 2 and 4 workers, the tasks mode and the backlog drain
    (quick: 1,000 events and one run each, a backlog of 20,000)."""
    events = events or (1000 if quick else 3000)
    runs = runs or (1 if quick else 3)
    backlog = backlog or (20_000 if quick else 100_000)
    database = Postgres()
    database.create()
    try:
        # Unbuffered: measure() reads the line a worker prints once it is ready.
        project = Project(
            database.url,
            None,
            settings="bench.settings",
            PYTHONUNBUFFERED="1",
            WEBHOOKS_PROCESSING="worker",
        )
        tasks_project = Project(
            database.url,
            None,
            settings="bench.settings",
            PYTHONUNBUFFERED="1",
            WEBHOOKS_PROCESSING="tasks",
        )
        tasks_project.manage("migrate", "--verbosity", "0")
        rows: list[dict[str, Any]] = []
        cases = [(f"{n} worker(s)", "worker", n, events) for n in (1, 2, 4)]
        # django-tasks-db runs about 60 tasks/s: a thousand give a steady figure.
        cases += [("tasks mode, 1 db_worker", "tasks", 1, min(events, 1000))]
        cases += [(f"backlog of {backlog:,}, 1 worker", "worker", 1, backlog)]
        for label, mode, workers, count in cases:
            chosen = tasks_project if mode == "tasks" else project
            repeat = 1 if count == backlog else runs
            figures = [
                measure(chosen, database, workers, count, concurrency, mode)
                for _ in range(repeat)
            ]
            rows.append(row(label, mode, workers, count, figures))
            if count == backlog:
                rows[-1]["backlog"] = True
            print(
                f"{label}: {rows[-1]['median']:8.1f} events/s, CPU per event: "
                f"processes {rows[-1]['worker_cpu_ms']:.2f} ms, PostgreSQL "
                f"{rows[-1]['database_cpu_ms']:.2f} ms  (runs: {', '.join(f'{f[0]:.1f}' for f in figures)})",
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
    parser.add_argument("--backlog", type=int, default=100_000)
    options = parser.parse_args()
    rows = run(
        False,
        events=options.events,
        runs=options.runs,
        concurrency=options.concurrency,
        backlog=options.backlog,
    )
    base = rows[0]["median"]
    print(
        "\ncase                              events/s (median)  spread         vs 1 worker"
    )
    for found in rows:
        print(
            f"{found['label']:<33} {found['median']:>17.1f}  {found['min']:.1f}-{found['max']:.1f}  {found['median'] / base:>10.2f}x"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%S")
    report = {
        "scenario": "processing throughput, no-op handler, PostgreSQL",
        "events": options.events,
        "runs": options.runs,
        "concurrency": options.concurrency,
        "backlog": options.backlog,
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
