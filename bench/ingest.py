"""Ingest throughput and latency: signed Stripe deliveries POSTed by wrk to our
receiver and, in the same run, to the peers in bench/peers/ (the raw ASGI ceiling,
the reference receiver built by hand without Django, the naive Django receiver,
the tutorials' Flask receiver).

    python -m bench.ingest [--quick]

Each c16 figure is the median of three wrk runs (quick: one); c64 runs once. After
each run against a receiver that stores, the rows added are counted: a 2xx without
a row is reported. Each row also gives the CPU seconds of the client (wrk), of the
server process and of the PostgreSQL backends, the whole machine's busy cores, and
which side ran out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from bench.cpu import cpu_seconds, tree_cpu_seconds
from tests.servers import BIN, ROOT, Postgres, Project, free_port, wait_for_port

SECRET = "whsec_bench_" + "0" * 32
SCRIPT = Path(__file__).parent / "wrk" / "stripe.lua"
NAIVE = "bench.peers.naive_django.settings"
THREADS = 2  # wrk's default; each thread takes its own slice of the pool
# Deliveries signed per second of load: enough that a receiver which stores (and so
# must see a new event id each time) never gets the same one twice. The others do
# not look at the id, and reuse the pool (see "wrapped").
POOL_RATE = {"ours": 12_000, "reference": 12_000, "naive Django": 3_000}
POOL_RATE |= {"raw ASGI": 1_000, "Flask": 1_000}
SERVERS: dict[str, Callable[[str, int], list[str]]] = {
    "daphne": lambda app, port: [
        str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), app
    ],
    "uvicorn": lambda app, port: [
        str(BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning", "--lifespan", "off",
    ],
    "gunicorn": lambda app, port: [
        str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "--workers", "1",
        "--log-level", "warning", app,
    ],
}  # fmt: skip
Row = dict[str, Any]
#: Runs per figure, seconds per run, concurrencies.
Plan = tuple[int, float, tuple[int, ...]]


def stripe_body() -> tuple[str, str]:
    """A ~1.5 KB payment_intent.succeeded event, split where its id goes."""
    intent = {"id": "pi_3Pbench", "object": "payment_intent", "amount": 4200,
              "currency": "eur", "status": "succeeded", "customer": "cus_bench",
              "description": "Order #1001 " + "x" * 1000, "payment_method_types": ["card"],
              "metadata": {"order_id": "1001", "source": "bench"}}  # fmt: skip
    event = {
        "id": "@ID@",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": "payment_intent.succeeded",
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": intent},
    }
    prefix, suffix = json.dumps(event).split("@ID@")
    return prefix, suffix


def write_pool(path: Path, count: int) -> None:
    """Pre-sign ``count`` deliveries with unique event ids (wrk's Lua has no HMAC)."""
    prefix, suffix = stripe_body()
    stamp, run = str(int(time.time())), uuid.uuid4().hex[:10]
    lines = [prefix, suffix]
    for n in range(count):
        event_id = f"evt_{run}{n:07d}"
        signed = f"{stamp}.{prefix}{event_id}{suffix}".encode()
        digest = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        lines.append(f"{event_id} t={stamp},v1={digest}")
    path.write_text("\n".join(lines) + "\n")


def wrk(port: int, connections: int, seconds: float, pool: Path) -> Row:
    """One wrk run; its figures, with the CPU seconds wrk itself used as ``client_cpu_s``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
        + ["--timeout", "10s", "-s", str(SCRIPT), f"http://127.0.0.1:{port}/webhooks/bench/"],
        env={**os.environ, "BENCH_POOL": str(pool), "BENCH_THREADS": str(THREADS)},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            row = dict(json.loads(line.removeprefix("BENCH_JSON ")))
            row["client_cpu_s"] = (after.ru_utime - before.ru_utime) + (
                after.ru_stime - before.ru_stime
            )
            return row
    raise RuntimeError(f"wrk said: {result.stdout}{result.stderr}")


def counter(url: str, table: str) -> Callable[[], int]:
    def count() -> int:
        if url.startswith("sqlite:///"):
            with contextlib.closing(sqlite3.connect(url[len("sqlite:///") :])) as conn:
                return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            return int(row[0]) if row else 0

    return count


@contextlib.contextmanager
def database(kind: str, folder: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder}/{uuid.uuid4().hex[:8]}.sqlite3"
        return
    postgres = Postgres()
    postgres.create()
    try:
        yield postgres.url
    finally:
        postgres.drop()


def database_cpu_seconds(name: str) -> float:
    """CPU used so far by the PostgreSQL backends connected to database ``name``.

    Backends are found by their process title ("postgres: 15/main: user database ...").
    A peer that connects per request (Django's default CONN_MAX_AGE=0) ends its
    backends between two readings, so the time of ended backends, which the
    postmaster collects as its children's, counts too (any database's: the machine
    runs only the bench).
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
            if title[:1] == [b"postgres:"] and name.encode() in title:
                total += cpu_seconds(int(entry.name))
            elif title[:1] and title[0].endswith(b"/bin/postgres"):  # the postmaster
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                ended = int(fields[13]) + int(fields[14])  # cutime, cstime
                total += ended / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            continue  # the process ended while we looked
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy so far, whoever used them (from /proc/stat)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def bottleneck(
    seconds: float, server: float, client: float, db: float, busy: float
) -> str:
    """Which side ran out, from the CPU seconds each used over a run of ``seconds``.

    The server is one process whose Python runs one thread at a time, so about one
    core is all it can use; wrk may use THREADS cores; the machine has cpu_count.
    """
    cores = os.cpu_count() or 1
    used = {"server": server / seconds, "client": client / seconds}
    used["PostgreSQL"] = db / seconds
    if used["server"] >= 0.8:
        return "server"
    if busy / seconds >= 0.8 * cores:
        others = busy / seconds - sum(used.values())
        return "machine" + (" (other load)" if others >= 0.5 else "")
    if used["client"] >= 0.8 * min(THREADS, cores):
        return "client"
    return "neither (waiting)"


@contextlib.contextmanager
def serving(server: str, app: str, env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """Start ``app`` under ``server``; yield its port and process id."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            SERVERS[server](app, port), cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            wait_for_port(port)
            yield port, process.pid
        finally:
            process.kill()
            process.wait()


#: Deliveries per second for the latency below saturation (every receiver here takes more).
PACED_RATE = 100


async def paced(port: int, rate: float, seconds: float) -> Row:
    """POST signed deliveries at a steady ``rate`` (open loop) and time each answer.

    HTTP/1.1 over kept-alive connections written by hand: a full client library
    costs a millisecond of CPU per request, enough to be what is measured.
    """
    prefix, suffix = stripe_body()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    failures = 0
    start = time.monotonic()

    async def post(n: int) -> None:
        nonlocal failures
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        body = f"{prefix}evt_paced_{uuid.uuid4().hex}{suffix}".encode()
        stamp = str(int(time.time()))
        digest = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        request = (
            "POST /webhooks/bench/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            f"Stripe-Signature: t={stamp},v1={digest.hexdigest()}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        sent = time.monotonic()
        reader, writer = (
            idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
        )
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        latencies.append(time.monotonic() - sent)
        failures += not head.startswith(b"HTTP/1.1 200")
        idle.append((reader, writer))

    await asyncio.gather(*(post(n) for n in range(int(rate * seconds))))
    for _, writer in idle:
        writer.close()
    latencies.sort()
    return {
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "non_2xx": failures,
        "requests": len(latencies),
    }


def measure(
    label: str,
    server: str,
    database: str,
    app: str,
    env: dict[str, str],
    count: Callable[[], int] | None,
    plan: Plan,
) -> list[Row]:
    runs, seconds, concurrencies = plan
    rows = []
    with (
        serving(server, app, env) as (port, pid),
        tempfile.TemporaryDirectory() as folder,
    ):
        pool = Path(folder) / "pool.txt"
        write_pool(pool, 2000)
        wrk(port, 4, 1, pool)  # warm up: imports, connections, caches
        database_name = env.get("DATABASE_URL", "").rpartition("/")[2]
        postgres = env.get("DATABASE_URL", "").startswith("postgres")
        for connections in concurrencies:
            results = []
            # The first concurrency (c16, where the targets are set) gets every run,
            # the others one each: make bench keeps to its 20 minutes.
            for _ in range(runs if connections == concurrencies[0] else 1):
                write_pool(pool, int(POOL_RATE[label] * seconds * 1.5))
                before = count() if count else 0
                cpu, db_cpu = tree_cpu_seconds(pid), database_cpu_seconds(database_name)
                busy, wall = machine_busy_seconds(), time.monotonic()
                result = wrk(port, connections, seconds, pool)
                time.sleep(0.5)  # let requests cut off by wrk's stop finish
                result["busy_s"] = machine_busy_seconds() - busy
                result["wall_s"] = time.monotonic() - wall
                result["stored"] = count() - before if count else None
                result["app_cpu_s"] = tree_cpu_seconds(pid) - cpu
                result["db_cpu_s"] = (
                    database_cpu_seconds(database_name) - db_cpu if postgres else None
                )
                results.append(result)
            rows.append(summarize(label, server, database, connections, results))
            print(format_row(rows[-1]), flush=True)
        if label == "ours":
            latency = asyncio.run(paced(port, PACED_RATE, seconds))
            rows.append({"scenario": "ingest-paced", "app": label, "server": server,
                         "database": database, "rate": PACED_RATE, **latency})  # fmt: skip
            print(
                f"  {label:<12} {server:<8} {database:<8} {PACED_RATE}/s paced "
                f"  p50 {latency['p50_ms']:.1f} ms  p99 {latency['p99_ms']:.1f} ms"
                f"  non-2xx {latency['non_2xx']}",
                flush=True,
            )
    return rows


def summarize(
    label: str, server: str, database: str, connections: int, results: list[Row]
) -> Row:
    rates = [r["requests"] / (r["duration_us"] / 1e6) for r in results]
    stored = [r["stored"] for r in results if r["stored"] is not None]
    middle = sorted(results, key=lambda r: r["requests"] / r["duration_us"])[
        len(results) // 2
    ]
    seconds = middle["wall_s"]  # the window the CPU figures were read over
    db_seconds = middle["db_cpu_s"] or 0.0
    return {
        "scenario": "ingest",
        "app": label,
        "server": server,
        "database": database,
        "connections": connections,
        "runs": len(results),
        "rps": statistics.median(rates),
        "rps_min": min(rates),
        "rps_max": max(rates),
        "p50_ms": statistics.median(r["p50_us"] for r in results) / 1000,
        "p99_ms": statistics.median(r["p99_us"] for r in results) / 1000,
        "non_2xx": sum(r["non_2xx"] for r in results),
        "errors": sum(r["socket_errors"] + r["timeouts"] for r in results),
        "pool_wrapped": sum(r["wrapped"] for r in results),
        "ok": sum(r["ok"] for r in results),
        "stored": sum(stored) if stored else None,
        "unstored_2xx": sum(max(0, r["ok"] - r["stored"]) for r in results)
        if stored
        else None,
        # CPU per answered request; the database's only for PostgreSQL (SQLite
        # runs inside the server process, so its work is in the app's figure).
        "app_cpu_ms": statistics.median(
            r["app_cpu_s"] * 1000 / max(1, r["requests"]) for r in results
        ),
        "db_cpu_ms": statistics.median(
            r["db_cpu_s"] * 1000 / max(1, r["requests"]) for r in results
        )
        if results[0]["db_cpu_s"] is not None
        else None,
        # CPU seconds over the median run, and who ran out in it.
        "seconds": seconds,
        "client_cpu_s": middle["client_cpu_s"],
        "server_cpu_s": middle["app_cpu_s"],
        "db_cpu_s": middle["db_cpu_s"],
        "busy_cpu_s": middle["busy_s"],
        "bottleneck": bottleneck(
            seconds,
            middle["app_cpu_s"],
            middle["client_cpu_s"],
            db_seconds,
            middle["busy_s"],
        ),
    }


def format_row(row: Row) -> str:
    check = "" if row["stored"] is None else f"  stored {row['stored']}/{row['ok']} 2xx"
    check += f"  cpu {row['app_cpu_ms']:.2f} ms"
    if row["db_cpu_ms"] is not None:
        check += f" + db {row['db_cpu_ms']:.2f} ms"
    check += f"\n      {cpu_line(row)}"
    return (
        f"  {row['app']:<12} {row['server']:<8} {row['database']:<8} c{row['connections']:<3}"
        f" {row['rps']:8.0f} req/s  p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:7.1f} ms"
        f"  non-2xx {row['non_2xx']}  errors {row['errors']}{check}"
    )


def cpu_line(row: Row) -> str:
    """CPU seconds of each side over the median run, and the side that ran out."""
    db = f", PostgreSQL {row['db_cpu_s']:.2f}" if row["db_cpu_s"] is not None else ""
    return (
        f"CPU s over {row['seconds']:.1f} s: client {row['client_cpu_s']:.2f}, "
        f"server {row['server_cpu_s']:.2f}{db}; whole machine busy {row['busy_cpu_s']:.2f}"
        f" of {row['seconds'] * (os.cpu_count() or 1):.1f}; bottleneck: {row['bottleneck']}"
    )


SUBJECTS = ("ours", "reference", "naive Django", "raw ASGI", "Flask")


def run(quick: bool, only: Iterable[str] = SUBJECTS) -> list[Row]:
    """Every subject of the scenario, or those named in ``only`` (to profile one)."""
    plan = (1, 5.0, (16,)) if quick else (3, 5.0, (16, 64))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("sqlite", "postgres"):
            if "ours" in only:
                rows += ours(kind, folder, plan)
            if "reference" in only and kind == "postgres":
                rows += reference(plan)
            if "naive Django" in only:
                rows += naive(kind, folder, plan)
    if "raw ASGI" in only:
        for server in ("daphne", "uvicorn"):
            app = "bench.peers.raw_asgi:application"
            rows += measure("raw ASGI", server, "-", app, dict(os.environ), None, plan)
    if "Flask" in only:
        app = "bench.peers.flask_app:app"
        rows += measure("Flask", "gunicorn", "-", app, dict(os.environ), None, plan)
    return rows


def ours(kind: str, folder: str, plan: Plan) -> list[Row]:
    rows: list[Row] = []
    with database(kind, folder) as url:
        project = Project(url, None, WEBHOOKS_PROCESSING="worker")
        project.manage("migrate", "--verbosity", "0")
        project.manage("webhooks_endpoint", "add", "bench", "--provider", "stripe", "--secret", SECRET)  # fmt: skip
        app, count = "project.asgi:application", counter(url, "webhooks_event")
        for server in ("daphne", "uvicorn"):
            rows += measure("ours", server, kind, app, project.env, count, plan)
    return rows


def reference(plan: Plan) -> list[Row]:
    """The hand-built receiver (bench/peers/reference.py), on uvicorn and PostgreSQL."""
    with database("postgres", "") as url:
        env = {**os.environ, "DATABASE_URL": url, "BENCH_STRIPE_SECRET": SECRET}
        app, count = (
            "bench.peers.reference:application",
            counter(url, "reference_event"),
        )
        return measure("reference", "uvicorn", "postgres", app, env, count, plan)


def naive(kind: str, folder: str, plan: Plan) -> list[Row]:
    rows: list[Row] = []
    with database(kind, folder) as url:
        project = Project(url, None, settings=NAIVE, BENCH_STRIPE_SECRET=SECRET)
        project.manage("migrate", "--run-syncdb", "--verbosity", "0")
        app = "bench.peers.naive_django.asgi:application"
        count = counter(url, "receiver_stripeevent")
        for server in ("daphne", "uvicorn"):
            rows += measure("naive Django", server, kind, app, project.env, count, plan)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run of 5 s, c16 only")
    parser.add_argument(
        "--only", action="append", choices=SUBJECTS, help="measure only this subject"
    )
    arguments = parser.parse_args()
    run(arguments.quick, arguments.only or SUBJECTS)


if __name__ == "__main__":
    main()
