from __future__ import annotations

import pytest
from django.test import override_settings

from webhooks.processing.runner import Runner


@pytest.mark.parametrize(
    ("concurrency", "busy", "wanted"),
    [
        (4, 0, 100),  # idle: a whole batch, a share for each lane
        (4, 1, 75),
        (4, 3, 25),
        (4, 4, 0),  # every lane busy: no claim
        (1, 0, 100),
        (1, 1, 0),
        (3, 0, 99),  # shares are whole events
    ],
)
@override_settings(WEBHOOKS_BATCH_SIZE=100)
def test_each_free_lane_gets_its_share_of_a_batch(concurrency, busy, wanted) -> None:
    runner = Runner(concurrency, "test-worker")
    try:
        runner.busy_lanes = busy
        assert runner.wanted() == wanted
    finally:
        runner.pool.shutdown()


@override_settings(WEBHOOKS_BATCH_SIZE=2)
def test_a_batch_smaller_than_the_lanes_still_gives_each_lane_one() -> None:
    runner = Runner(4, "test-worker")
    try:
        assert runner.wanted() == 4
    finally:
        runner.pool.shutdown()
