"""Stop PostgreSQL mid-stream: 503 with Retry-After while it is away, never a 2xx
without a row, and ingest back by itself when it returns.

The first connection failure trips the breaker (webhooks/ingest/breaker.py): from
then on deliveries are answered without a connection attempt, until its probe
finds the database back. How fast those 503s come is measured in bench/outage.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.conftest import SECRET, stored
from tests.faults.sender import Sender
from tests.servers import Cluster, Project

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    cluster.create()
    yield cluster
    cluster.destroy()


def test_postgres_stopped_mid_stream_answers_503_then_recovers(cluster) -> None:
    project = Project(cluster.url, None, WEBHOOKS_PROCESSING="worker")
    project.manage("migrate", "--verbosity", "0")
    project.manage(
        "webhooks_endpoint", "add", "gh", "--provider", "github", "--secret", SECRET
    )
    port = project.serve()
    sender = Sender(port, "gh", SECRET, threads=4)
    try:
        sender.start()
        sender.wait_for(100)
        cluster.stop()
        sender.wait_for(8, acknowledged=False)  # includes the first 503s
        refused = [o for o in sender.answers(False) if not o.acknowledged]
        assert refused, "no delivery was refused while PostgreSQL was down"
        cluster.start()
        # No restart of the server: its pool reconnects by itself.
        sender.wait_for(100, timeout=120)
        outcomes = sender.stop()
        log = project.log(port)
    finally:
        project.stop_all()

    # Each delivery that asked the database and failed logs this line; the
    # breaker's 503s ask nothing. At most the deliveries in flight when the
    # server went (their sessions ended) and those of the next attempt, which
    # tripped it, asked: one per sending thread each time, each time it tripped.
    tripped = log.count("unreachable: deliveries are answered 503")
    closed = log.count("reachable again: deliveries are stored")
    asked = log.count("not stored: database unavailable")
    assert tripped >= 1, log[-3000:]
    assert closed == tripped, log[-3000:]  # it recovered by itself, every time
    assert log.index("unreachable: deliveries") < log.rindex("reachable again")
    refused_503 = [o for o in outcomes if o.status == 503]
    assert asked <= 2 * sender.threads * tripped, (asked, log[-3000:])
    assert len(refused_503) > asked

    statuses = {o.status for o in outcomes}
    assert statuses <= {200, 503}, (sender.summary(), log[-3000:])
    assert all(o.retry_after for o in outcomes if o.status == 503)
    assert 503 in statuses
    rows = stored(cluster.url)
    acknowledged = [o for o in outcomes if o.acknowledged]
    missing = [o.delivery for o in acknowledged if rows.get(o.delivery) != [o.event_id]]
    assert not missing, f"2xx without its row: {missing}"
    # Answers come in order of time: the last ones, after the return, are 2xx again.
    last = sorted(outcomes, key=lambda o: o.at)[-20:]
    assert all(o.acknowledged for o in last), [o.status for o in last]
