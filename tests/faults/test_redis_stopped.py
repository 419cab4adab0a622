"""Stop Redis mid-stream: ingest keeps answering 2xx, and dashboards reconnect and
resume with nothing missing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.faults.conftest import SECRET, stored
from tests.faults.sender import Outcome, Sender
from tests.faults.test_stalled_dashboard import until_logged
from tests.realtime.test_scale_out import Dashboard
from tests.servers import Postgres, Project, Redis

pytestmark = pytest.mark.postgres


@pytest.fixture
def redis() -> Iterator[Redis]:
    redis = Redis()
    redis.start()
    yield redis
    redis.kill()


#: Deliveries acknowledged in each stretch (Redis up, down, back) before the next.
DELIVERIES = 20


def rate(outcomes: list[Outcome], start: float, end: float) -> float:
    return sum(o.acknowledged and start <= o.at < end for o in outcomes) / (end - start)


@pytest.mark.asyncio
async def test_redis_stopped_mid_stream_ingest_goes_on_and_dashboards_resume(
    database: Postgres, redis: Redis
) -> None:
    project = Project(database.url, redis.url, WEBHOOKS_PROCESSING="worker")
    await asyncio.to_thread(project.manage, "migrate", "--verbosity", "0")
    await asyncio.to_thread(
        project.manage,
        "webhooks_endpoint", "add", "gh", "--provider", "github", "--secret", SECRET,
    )  # fmt: skip
    session = await asyncio.to_thread(project.staff_session)
    port = project.serve()
    sender = Sender(port, "gh", SECRET, threads=2)
    try:
        async with (
            Dashboard(port, session) as first,
            Dashboard(port, session) as second,
        ):
            async with asyncio.timeout(20):
                while not (first.connections and second.connections):
                    await asyncio.sleep(0.05)
            sender.start()
            await asyncio.to_thread(sender.wait_for, DELIVERIES)
            redis_stopped = time.monotonic()
            redis.kill()
            # Down until the hub has noticed (and closed its sockets) and deliveries
            # went on being acknowledged meanwhile.
            await until_logged(project, port, "hub lost the channel layer")
            await asyncio.to_thread(sender.wait_for, DELIVERIES)
            redis_back = time.monotonic()
            redis.start()  # same port, empty: the hub must rejoin its group
            await asyncio.to_thread(sender.wait_for, DELIVERIES)
            outcomes = await asyncio.to_thread(sender.stop)
            ended = time.monotonic()

            acknowledged = {o.event_id for o in outcomes if o.acknowledged}
            try:
                # A bound for a loaded machine; the dashboards need a few seconds.
                await first.holds(acknowledged, timeout=120)
                await second.holds(acknowledged, timeout=120)
            except TimeoutError:
                pytest.fail(
                    f"dashboards miss {sorted(acknowledged - set(first.events))[:20]} and "
                    f"{sorted(acknowledged - set(second.events))[:20]}\n"
                    f"{project.log(port)[-3000:]}"
                )
            reconnections = (first.connections, second.connections)
    finally:
        sender.stop()
        project.stop_all()

    assert {o.status for o in outcomes} == {200}, sender.summary()
    rows = stored(database.url)
    assert all(rows[o.delivery] == [o.event_id] for o in outcomes)
    assert min(reconnections) >= 2  # each page was sent away and came back
    # Deliveries were acknowledged in each stretch: before, while Redis was down, after.
    started = min(o.at for o in outcomes)
    rates = [
        rate(outcomes, started, redis_stopped),
        rate(outcomes, redis_stopped, redis_back),
        rate(outcomes, redis_back, ended),
    ]
    assert all(stretch > 0 for stretch in rates), (rates, reconnections)


@pytest.mark.asyncio
async def test_an_idle_layer_keeps_dashboards_connected_and_pushed_to(
    database: Postgres, redis: Redis
) -> None:
    """The hub's receive waits 5 s in Redis at a time; idle, it must not look like a loss."""
    project = Project(database.url, redis.url, WEBHOOKS_PROCESSING="worker")
    await asyncio.to_thread(project.manage, "migrate", "--verbosity", "0")
    await asyncio.to_thread(
        project.manage,
        "webhooks_endpoint", "add", "gh", "--provider", "github", "--secret", SECRET,
    )  # fmt: skip
    session = await asyncio.to_thread(project.staff_session)
    port = project.serve()
    sender = Sender(port, "gh", SECRET)
    try:
        async with Dashboard(port, session) as dashboard:
            async with asyncio.timeout(20):
                while not dashboard.connections:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(8)  # longer than one of the layer's 5 s waits
            answer = await asyncio.to_thread(sender.deliver, "after-the-quiet")
            assert answer.event_id is not None, answer
            await dashboard.holds({answer.event_id})
            connections, pushed = dashboard.connections, dashboard.pushed
            log = project.log(port)
    finally:
        project.stop_all()
    assert "lost the channel layer" not in log, log[-3000:]
    assert connections == 1
    assert answer.event_id in pushed
