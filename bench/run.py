"""Every benchmark scenario in one run, beside the ceiling and the peers: ingest
(bench/ingest.py), processing (bench/workers.py), commit → handler start
(bench/latency.py), live fan-out (bench/fanout.py), the store at scale
(bench/store.py) and memory (bench/memory.py).

    python -m bench.run [--quick] [--only NAME,...] [--list]   (make bench, make bench-quick)

Prints one table with the ratios of this run and writes bench/results/<UTC time>.json
and, for a run of every scenario, bench/RESULTS.md.

A scenario is a module with ``run(quick: bool) -> list[dict]``: one dict per row,
with a ``"scenario"`` key that bench/report.py turns into a line of the table (and
``server_cpu_s``/``client_cpu_s``... from bench.cpu.Clock.read() for its CPU column).
To add one, add it to SCENARIOS below and its row shape to report.cells().
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench import fanout, ingest, latency, memory, report, store, workers

#: In the order they run and are printed.
SCENARIOS: dict[str, Any] = {
    "ingest": ingest,
    "processing": workers,
    "latency": latency,
    "fanout": fanout,
    "store": store,
    "memory": memory,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few minutes: short runs, fewer cases, smaller store",
    )
    parser.add_argument(
        "--only",
        metavar="NAME,...",
        help="run only these scenarios: " + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--list", action="store_true", help="name each scenario and what it measures"
    )
    options = parser.parse_args()
    if options.list:
        for name, scenario in SCENARIOS.items():
            print(f"{name:12} {(scenario.__doc__ or '').strip().splitlines()[0]}")
        return
    quick = options.quick
    chosen = options.only.split(",") if options.only else list(SCENARIOS)
    if unknown := set(chosen) - set(SCENARIOS):
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    command = "python -m bench.run" + (" --quick" if quick else "")
    command += f" --only {options.only}" if options.only else ""
    about = report.machine()  # before the load: its load average is other tenants'

    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for name in chosen:
        print(f"== {name}", flush=True)
        began = time.monotonic()
        rows += SCENARIOS[name].run(quick)
        # Per scenario, so the whole run's budget (make bench: 20 minutes) can be kept.
        about[f"duration of {name}"] = f"{time.monotonic() - began:.0f} s"
        print(f"== {name}: {about[f'duration of {name}']}", flush=True)
    about["duration"] = f"{time.monotonic() - started:.0f} s"
    # A partial run leaves RESULTS.md, the table of every scenario, as it was.
    print(report.write(rows, quick, command, about, markdown=not options.only))
    written = (
        "bench/results/" if options.only else "bench/RESULTS.md and bench/results/"
    )
    print(f"\nWritten: {written} ({about['duration']})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
