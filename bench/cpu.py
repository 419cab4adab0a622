"""CPU seconds of the processes on each side of a benchmark, and which side ran out.

A figure means little if the load client was the one out of CPU: each scenario
measures the server's processes and the client's over the same window and says
which side was the bottleneck. Every process counts at most one core (these
servers run one event loop each), so a side is *saturated* when one of its
processes used nearly a whole core over the window.

    clock = Clock(server=[server_pid], client=[os.getpid(), *child_pids])
    ... the load ...
    row |= clock.read()   # server_cpu_s, client_cpu_s, ..., bottleneck
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")
#: Share of a core past which a process is taken as out of CPU (scheduling and
#: the other tenants of a shared machine keep a busy process just under 1.0).
SATURATED = 0.85


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its threads (0.0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # Fields after the command name, which may hold spaces: close paren first.
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds of a process and of its live descendants: a server that forks
    workers (gunicorn) does its work in them."""
    total = cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(tree_cpu_seconds(int(child)) for child in children)


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all the machine's cores since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class Clock:
    """CPU seconds per side from now until :meth:`read`."""

    def __init__(self, *, server: Iterable[int], client: Iterable[int]) -> None:
        self.sides = {"server": list(server), "client": list(client)}
        self.started = time.monotonic()
        self.machine = machine_jiffies()
        self.start = {
            pid: cpu_seconds(pid) for pids in self.sides.values() for pid in pids
        }

    def read(self) -> dict[str, Any]:
        wall = time.monotonic() - self.started
        busy, total = machine_jiffies()
        out: dict[str, Any] = {
            "wall_s": wall,
            # All cores, every process of the machine (others' too): near 1.0, the
            # machine itself was full and no side's figure is its own.
            "machine_busy": (busy - self.machine[0]) / max(1, total - self.machine[1]),
        }
        busiest: dict[str, float] = {}
        for side, pids in self.sides.items():
            used = [cpu_seconds(pid) - self.start[pid] for pid in pids]
            out[f"{side}_cpu_s"] = sum(used)
            busiest[side] = max(used, default=0.0) / wall if wall else 0.0
            out[f"{side}_busiest_core"] = busiest[side]
        out["bottleneck"] = bottleneck(
            busiest["server"], busiest["client"], out["machine_busy"]
        )
        return out


def bottleneck(server: float, client: float, machine: float = 0.0) -> str:
    """Which side ran out of CPU, from the busiest process's share of a core on each
    (and the machine's cores, all of them busy with whatever ran on them)."""
    if client >= SATURATED and client >= server:
        return "client"
    if server >= SATURATED:
        return "server"
    if machine >= SATURATED:
        return "machine (all cores busy)"
    return "neither (waiting, not CPU)"


def describe(row: dict[str, Any]) -> str:
    """One line for the console and the table."""
    if "server_cpu_s" not in row:
        return ""
    return (
        f"CPU s: server {row['server_cpu_s']:.1f} (busiest {row['server_busiest_core']:.0%} of a core), "
        f"client {row['client_cpu_s']:.1f} (busiest {row['client_busiest_core']:.0%}); "
        f"machine {row['machine_busy']:.0%} busy; bottleneck: {row['bottleneck']}"
    )
