"""The benchmarks' one table, with the ratios computed from the same run, and the
machine it ran on: printed, and written to bench/results/<UTC time>.json and
bench/RESULTS.md."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from bench import ingest

HERE = Path(__file__).parent
#: The soak (make soak) writes RESULTS.md's last section; a bench run keeps it there.
SOAK_HEADING = "## Soak"
Row = dict[str, Any]
COLUMNS = ["scenario", "subject", "setting", "result", "spread", "p50 ms", "p99 ms"]
COLUMNS += [
    "errors / check",
    "same run, compared",
    "CPU s: server / client, bottleneck",
]


def machine() -> dict[str, str]:
    def run(*command: str) -> str:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=10)
        except OSError:
            return "?"
        return (result.stdout or result.stderr).strip().splitlines()[0]

    meminfo = dict(
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines()
    )
    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = str(row[0]) if row else "?"
    except psycopg.Error:
        postgres = "?"
    packages = ["django", "channels", "daphne", "uvicorn", "gunicorn", "flask"]
    return {
        "cpus": str(os.cpu_count()),
        "nproc": run("nproc"),
        "memory": f"{int(meminfo['MemTotal'].split()[0]) // 1024} MiB",
        "load average at start": " ".join(f"{n:.2f}" for n in os.getloadavg()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **{name: metadata.version(name) for name in packages},
        "postgresql": postgres,
        "wrk": run("wrk", "-v"),
    }


def ratio(ours: Row, rows: list[Row], **match: Any) -> float | None:
    for row in rows:
        if row.get("scenario") == "ingest" and match.items() <= row.items():
            return float(ours["rps"] / row["rps"]) if row["rps"] else None
    return None


def ratios(rows: list[Row]) -> list[Row]:
    """Ours against the ceiling and the peers, and 4 workers against 1."""
    found: list[Row] = []
    for row in rows:
        if row.get("scenario") != "ingest" or row["app"] != "ours":
            continue
        c = row["connections"]
        name = f"ours {row['server']} {row['database']} c{c}"
        against = [
            ("raw ASGI uvicorn", 0.10, {"app": "raw ASGI", "server": "uvicorn", "connections": c}),
            (f"raw ASGI {row['server']}", 0.5 if row["server"] == "daphne" else None,
             {"app": "raw ASGI", "server": row["server"], "connections": c}),
            ("naive Django", 10.0, {"app": "naive Django", "server": row["server"],
                                    "database": row["database"], "connections": c}),
            ("Flask gunicorn", None, {"app": "Flask", "connections": c}),
        ]  # fmt: skip
        if row["database"] == "postgres":
            against.append(("reference receiver", 0.8 if row["server"] == "uvicorn" else None,
                            {"app": "reference", "connections": c}))  # fmt: skip
        for label, target, match in (
            against[:1] + against[2:] if row["server"] == "uvicorn" else against
        ):
            value = ratio(row, rows, **match)
            found.append({"ours": name, "against": label, "ratio": value, "target": target})  # fmt: skip
    found += processing_ratios(rows)
    found += fanout_ratios(rows)
    return found


def processing_ratios(rows: list[Row]) -> list[Row]:
    """Workers against one worker and against ingest; tasks mode and backlog against one worker."""
    found: list[Row] = []
    measured = [r for r in rows if r.get("scenario") == "processing"]
    workers = {r["workers"]: r for r in measured if r.get("mode", "worker") == "worker" and not r.get("backlog")}  # fmt: skip
    one = workers.get(1)
    if one is None:
        return found
    for count, target in ((2, 1.6), (4, None)):
        if count in workers:
            found.append({"ours": workers[count].get("label", f"{count} workers"), "against": "1 worker",
                          "ratio": workers[count]["median"] / one["median"], "target": target})  # fmt: skip
    ingest = [r for r in rows if r.get("scenario") == "ingest" and r["app"] == "ours"
              and r["server"] == "uvicorn" and r["database"] == "postgres" and r["connections"] == 16]  # fmt: skip
    if ingest and ingest[0]["rps"]:
        found.append({"ours": one.get("label", "1 workers"), "against": "ingest uvicorn postgres c16",
                      "ratio": one["median"] / ingest[0]["rps"], "target": 0.8})  # fmt: skip
    for other in measured:
        if other.get("mode") == "tasks" or other.get("backlog"):
            found.append({"ours": other["label"], "against": "1 worker, CPU per event",
                          "ratio": other["worker_cpu_ms"] / one["worker_cpu_ms"], "target": None})  # fmt: skip
    return found


def fanout_ratios(rows: list[Row]) -> list[Row]:
    """The Redis layer's fan-out p99 against the in-memory layer's, same server and load."""
    memory = {
        (r["server"], r["dashboards"], r["rate"]): r["p99_ms"]
        for r in rows
        if r.get("scenario") == "fanout" and r["layer"] == "in-memory"
    }
    found = []
    for r in rows:
        if r.get("scenario") != "fanout" or r["layer"] != "redis":
            continue
        base = memory.get((r["server"], r["dashboards"], r["rate"]))
        if base:
            found.append({
                "ours": f"fanout redis {r['server']} {r['dashboards']}@{r['rate']:g}",
                "against": "in-memory layer", "ratio": r["p99_ms"] / base,
                "target": 1.5 if (r["dashboards"], r["rate"]) == (100, 200) else None,
            })  # fmt: skip
    return found


def compared(row: Row, found: list[Row]) -> str:
    if row.get("scenario") == "ingest" and row["app"] == "ours":
        name = f"ours {row['server']} {row['database']} c{row['connections']}"
    elif row.get("scenario") == "processing":
        name = row.get("label", f"{row['workers']} workers")
    else:
        return ""
    return "; ".join(
        f"{r['ratio']:.3g}x {r['against']}"
        + (f" (target ≥ {r['target']:g}x)" if r["target"] else "")
        for r in found
        if r["ours"] == name and r["ratio"] is not None
    )


def cells(row: Row, found: list[Row]) -> list[str]:
    if row["scenario"] == "ingest-paced":
        return [
            "ingest below saturation", row["app"], f"{row['server']}, {row['database']}, {row['rate']}/s steady",
            f"{row['requests']} requests", "", f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}",
            f"{row['non_2xx']} non-2xx", "p99 target < 20 ms",
        ]  # fmt: skip
    if row["scenario"] == "ingest":
        check = f"{row['non_2xx']} non-2xx, {row['errors']} errors"
        if row["stored"] is not None:
            check += f"; {row['unstored_2xx']} 2xx without a row"
        if row["app"] == "ours":
            check += (
                f"; CPU per delivery: server {row['app_cpu_ms']:.2f} ms (target ≤ 0.5)"
            )
            if row["db_cpu_ms"] is not None:
                check += f", PostgreSQL {row['db_cpu_ms']:.2f} ms (target ≤ 0.25)"
        if "bottleneck" in row:
            check += f"; CPU s client {row['client_cpu_s']:.1f}, server {row['server_cpu_s']:.1f}"
            if row["db_cpu_s"] is not None:
                check += f", PostgreSQL {row['db_cpu_s']:.1f}"
            check += f" in {row['seconds']:.1f} s: {row['bottleneck']} ran out"
        return [
            "ingest", row["app"], f"{row['server']}, {row['database']}, c{row['connections']}",
            f"{row['rps']:.0f} req/s", f"{row['rps_min']:.0f}-{row['rps_max']:.0f}",
            f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}", check, compared(row, found),
        ]  # fmt: skip
    if row["scenario"] == "processing":
        return [
            "processing", row.get("label", f"{row['workers']} worker(s)"), f"PostgreSQL, {row['events']:,} events",
            f"{row['median']:.0f} events/s", f"{row['min']:.0f}-{row['max']:.0f}", "", "",
            f"CPU per event: workers {row['worker_cpu_ms']:.2f} ms, PostgreSQL {row['database_cpu_ms']:.2f} ms"
            if "worker_cpu_ms" in row else "",
            compared(row, found),
        ]  # fmt: skip
    if row["scenario"] == "latency":
        return [
            "commit → handler start", f"{row['mode']} mode", f"PostgreSQL, {row['rate']:g}/s, {row['seconds']:g} s",
            f"{row['started']} of {row['delivered']} started", f"max {row['max_ms']:.1f} ms",
            f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}",
            f"from the 2xx: p50 {row['after_2xx_p50_ms']:.1f}, p99 {row['after_2xx_p99_ms']:.1f} ms",
            verdict(row["p99_ms"] < row["target_p99_ms"], f"p99 < {row['target_p99_ms']:g} ms")
            if row["target_p99_ms"] else "no target",
        ]  # fmt: skip
    if row["scenario"] == "store":
        target = row["target_ms"]
        return [
            "store", row["subject"], f"PostgreSQL, {row['events']:,} events",
            f"{row['ms']:.1f} ms", f"{row['min_ms']:.1f}-{row['max_ms']:.1f}", "", "",
            f"{row['queries']} queries, {row['database_ms']:.1f} ms in the database",
            verdict(row["ms"] < target, f"< {target:g} ms") if target else "",
        ]  # fmt: skip
    if row["scenario"] == "memory":
        return [
            "memory", f"RSS of the {row['process']}", f"{row['first_mark']:,} vs {row['deliveries']:,} deliveries",
            f"{row['rss_first_mib']:.1f} → {row['rss_last_mib']:.1f} MiB", "", "", "",
            f"{row['growth']:+.1%}",
            verdict(abs(row["growth"]) <= row["target_growth"], f"within {row['target_growth']:.0%}"),
        ]  # fmt: skip
    if row["scenario"] == "fanout-connect":
        return [
            "dashboards connecting at once", f"{row['dashboards']} dashboards", f"{row['server']}, {row['layer']}",
            f"{row['connected']} in", f"all in after {row['all_in_seconds']:.1f} s", "", "",
            f"{row['refused']} refusals, {row['never_in']} never in (a refused page retries as the page does)"
            + (f" ({'; '.join(row['first_refusals'])})" if row["refused"] else ""),
            verdict(row["refused"] == 0, "none refused"),
        ]  # fmt: skip
    if row["scenario"] == "fanout":
        losses = (
            f"{row['pushed_missing_total']} missed live (max {row['pushed_missing_max']} a socket), "
            f"{row['missing_after_resume']} after resume, {row['closed_by_server']} closed, "
            f"{row['refused']} refused; POST → 2xx p99 {row['ingest_p99_ms']:.1f} ms, "
            f"2xx → frame p99 {row['fanout_p99_ms']:.1f} ms"
        )
        target = row.get("target_p99_ms")
        compare = (
            [verdict(row["p99_ms"] < target, f"p99 < {target:g} ms")] if target else []
        )
        compare += [
            f"{r['ratio']:.2f}x in-memory (target ≤ 1.5x)"
            for r in found
            if r.get("ours")
            == f"fanout redis {row['server']} {row['dashboards']}@{row['rate']:g}"
        ]
        return [
            "live fan-out", f"{row['dashboards']} dashboards", f"{row['server']}, {row['layer']}, {row['rate']:g}/s, {row['seconds']:g} s",
            f"{row['delivered']} delivered ({row['achieved_rate']:.0f}/s)", f"p95 {row['p95_ms']:.1f}",
            f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}", losses, "; ".join(compare),
        ]  # fmt: skip
    return [row["scenario"], "", "", "", "", "", "", "", ""]


def cpu_cell(row: Row) -> str:
    """Each side's CPU seconds over the scenario's window (bench.cpu), where measured."""
    if "busy_cpu_s" in row:  # an ingest row: its own CPU line (bench.ingest)
        return ingest.cpu_line(row)
    if "server_busiest_core" not in row:
        return ""
    return (
        f"{row['server_cpu_s']:.1f} ({row['server_busiest_core']:.0%} of a core) / "
        f"{row['client_cpu_s']:.1f} ({row['client_busiest_core']:.0%}); machine "
        f"{row['machine_busy']:.0%} busy; {row['bottleneck']}"
    )


def verdict(met: bool, target: str) -> str:
    return f"target {target}: {'met' if met else 'missed'}"


def table(rows: list[Row], found: list[Row]) -> str:
    lines = [COLUMNS, ["---"] * len(COLUMNS)]
    lines += [[*cells(row, found), cpu_cell(row)] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def write(
    rows: list[Row],
    quick: bool,
    command: str,
    about: dict[str, str],
    *,
    markdown: bool = True,
) -> str:
    """Write the results JSON and, unless ``markdown`` is False (a partial run), RESULTS.md."""
    found = ratios(rows)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (HERE / "results").mkdir(exist_ok=True)
    report = {"time": stamp, "quick": quick, "command": command, "machine": about}
    report |= {"rows": rows, "ratios": found}
    # Written before the table: a run's figures outlive a fault in rendering them.
    (HERE / "results" / f"{stamp}.json").write_text(json.dumps(report, indent=2))
    text = table(rows, found)
    if not markdown:
        return text
    machine_lines = "\n".join(f"- {key}: {value}" for key, value in about.items())
    soak = soak_section()
    (HERE / "RESULTS.md").write_text(
        f"# Benchmark results\n\nThe latest run of `{command}` ({'quick' if quick else 'full'}), "
        f"{stamp}. Absolute figures drift between machines and with other load on them;"
        " compare the ratios, measured in the same run.\n\n## Machine\n\n"
        f"{machine_lines}\n\n## Commands\n\n```\n{command}\n"
        "# ingest load: wrk -t2 -c<16|64> -d5s --latency --timeout 10s "
        "-s bench/wrk/stripe.lua http://127.0.0.1:<port>/webhooks/bench/\n"
        "# ours: <daphne|uvicorn> project.asgi:application  (WEBHOOKS_PROCESSING=worker, no worker)\n"
        "# peers: <daphne|uvicorn> bench.peers.raw_asgi:application, "
        "uvicorn bench.peers.reference:application (PostgreSQL), "
        "<daphne|uvicorn> bench.peers.naive_django.asgi:application, "
        "gunicorn bench.peers.flask_app:app\n"
        "# commit → handler start: 20 deliveries/s to daphne, inline mode, then worker mode "
        "with one webhooks_worker\n"
        "# store: generated events (INSERT ... SELECT generate_series; 1,000,000, quick "
        "100,000), reads timed in a Django process\n"
        "# memory: wrk -t2 -c16 to daphne (worker mode) with one webhooks_worker; "
        "RSS after 1,000 and after 100,000 deliveries (quick 20,000)\n"
        "# fan-out: python -m bench.fanout --server daphne uvicorn --dashboards 10 100 1000 "
        "--rate 50 200 (one server process, WEBHOOKS_PROCESSING=worker, no worker; "
        "dashboards: raw-socket clients, 250 per process, opened 100 at a time; deliveries: "
        "raw HTTP keep-alive, 32 connections, paced); --connect 1000: all at once\n"
        "# CPU s: utime+stime of the server process and of the client's processes over the "
        "scenario's window (bench/cpu.py); a side whose busiest process used ≥ 85 % of a "
        "core is the bottleneck\n```\n\n"
        "## Results\n\nMedians of the runs; spread is min-max. Ingest POSTs ~1.5 KB signed "
        "Stripe events, each a new event id; 'without a row' counts 2xx answers that left "
        "no stored event.\n\n"
        f"{text}\n" + (f"\n{soak}" if soak else "")
    )
    return text


def soak_section() -> str:
    """RESULTS.md's soak section as the last soak left it, or ''."""
    path = HERE / "RESULTS.md"
    found = path.read_text().partition(f"\n{SOAK_HEADING}\n") if path.exists() else ()
    return f"{SOAK_HEADING}\n{found[2]}" if found and found[1] else ""


def write_soak(section: str) -> None:
    """Put the soak's section (starting with SOAK_HEADING) at the end of RESULTS.md,
    in place of the one an earlier soak left."""
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    before = text.partition(f"\n{SOAK_HEADING}\n")[0].rstrip("\n")
    path.write_text(f"{before}\n\n{section.rstrip()}\n")
