"""SIGKILL the server during a steady stream: a 2xx means the delivery is stored."""

from __future__ import annotations

import pytest

from tests.faults.conftest import SECRET, stored
from tests.faults.sender import Sender
from tests.servers import Project

pytestmark = pytest.mark.postgres


def test_server_killed_mid_stream_loses_no_acknowledged_delivery(database) -> None:
    project = Project(database.url, None, WEBHOOKS_PROCESSING="worker")
    project.manage("migrate", "--verbosity", "0")
    project.manage(
        "webhooks_endpoint", "add", "gh", "--provider", "github", "--secret", SECRET
    )
    port = project.serve()
    sender = Sender(port, "gh", SECRET, threads=6)
    try:
        sender.start()
        sender.wait_for(200)
        project.kill(port)  # SIGKILL, with requests in flight
        sender.wait_for(20, acknowledged=False)  # the sender sees the server gone
        outcomes = sender.stop()

        acknowledged = {o.delivery: o.event_id for o in outcomes if o.acknowledged}
        unanswered = {o.delivery for o in outcomes if not o.acknowledged}
        rows = stored(database.url)
        assert unanswered, "the kill interrupted nothing"
        lost = {d for d in acknowledged if d not in rows}
        assert not lost, f"acknowledged but not stored: {sorted(lost)}"
        assert all(rows[d] == [event_id] for d, event_id in acknowledged.items())
        assert all(len(ids) == 1 for ids in rows.values())

        # The provider retries what got no 2xx: each ends stored exactly once.
        sender.port = project.serve()
        retried = sender.resend(sorted(unanswered))
        assert {o.status for o in retried} == {200}, sender.summary()
    finally:
        project.stop_all()
    rows = stored(database.url)
    sent = set(acknowledged) | unanswered
    assert set(rows) == sent
    assert all(len(ids) == 1 for ids in rows.values())
    # A delivery stored just before the kill, its answer lost, comes back as a duplicate.
    duplicates = sum(o.stored_as == "duplicate" for o in retried)
    print(
        f"\nacknowledged before the kill: {len(acknowledged)}; unanswered: "
        f"{len(unanswered)} (stored before the kill, answer lost: {duplicates})"
    )
