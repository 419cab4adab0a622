from __future__ import annotations

import pytest

from webhooks.processing.runner import Runner


@pytest.mark.parametrize(
    ("concurrency", "running", "wanted"),
    [
        (4, 0, 4),  # idle: fill every thread
        (4, 1, 3),
        (4, 2, 2),  # half free: one claim for the pair
        (4, 3, 0),  # one free thread waits for a second
        (4, 4, 0),
        (2, 1, 1),  # two threads: every free one is a batch
        (1, 0, 1),
        (1, 1, 0),
    ],
)
def test_finished_events_are_refilled_in_batches(concurrency, running, wanted) -> None:
    runner = Runner(concurrency, "test-worker")
    try:
        runner.running = set(range(running))
        assert runner.wanted() == wanted
    finally:
        runner.pool.shutdown()
