"""Every benchmark scenario in one run, beside the ceiling and the peers: ingest
(bench/ingest.py), processing (bench/workers.py) and live fan-out (bench/fanout.py).

    python -m bench.run [--quick]     (make bench, make bench-quick)

Prints one table with the ratios of this run and writes bench/results/<UTC time>.json
and bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench import fanout, ingest, report, workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="about a minute: short runs, fewer cases"
    )
    quick = parser.parse_args().quick
    command = "python -m bench.run" + (" --quick" if quick else "")
    about = report.machine()  # before the load: its load average is other tenants'

    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for name, scenario in (("ingest", ingest), ("processing", workers), ("live fan-out", fanout)):  # fmt: skip
        print(f"== {name}", flush=True)
        rows += scenario.run(quick)
    about["duration"] = f"{time.monotonic() - started:.0f} s"
    print(report.write(rows, quick, command, about))
    print(f"\nWritten: bench/RESULTS.md and bench/results/ ({about['duration']})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
