"""A benchmark app whose only handler does nothing, to measure the processing machinery,
and one that notes when it starts, for bench/latency.py."""

from __future__ import annotations

import os
import time

import webhooks
from webhooks.models import Event


@webhooks.handler("none")
def nothing(event: Event) -> None:
    return None


@webhooks.handler("github", "bench.latency")
def note_start(event: Event) -> None:
    """Append "<event id> <start time> <received_at>" (Unix seconds) to BENCH_LATENCY_FILE."""
    started = time.time()
    path = os.environ.get("BENCH_LATENCY_FILE")
    if path:
        # One short write in append mode: lines from several threads never interleave.
        with open(path, "a") as file:
            file.write(
                f"{event.pk} {started:.6f} {event.received_at.timestamp():.6f}\n"
            )


@webhooks.handler("stripe")
def nothing_for_stripe(event: Event) -> None:
    """The deliveries of bench/memory.py run a handler, as real ones do."""
    return None
