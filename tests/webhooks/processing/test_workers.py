"""Processing with real processes over PostgreSQL: several workers, a killed worker,
and inline mode inside a daphne server."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.servers import Postgres, Project, post_github

pytestmark = pytest.mark.postgres

CREATE_EVENTS = """
from django.utils import timezone
from webhooks.models import Endpoint, Event
endpoint = Endpoint.objects.create(slug="open", provider="none")
now = timezone.now()
Event.objects.bulk_create(
    Event(endpoint=endpoint, provider="none", delivery_id=f"d{n}", event_type="tick",
          body=b"{}", payload=PAYLOAD, next_attempt_at=now)
    for n in range(COUNT)
)
"""


@pytest.fixture
def database() -> Iterator[Postgres]:
    database = Postgres()
    database.create()
    yield database
    database.drop()


def query(database: Postgres, sql: str) -> list[tuple]:
    with psycopg.connect(database.url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(sql).fetchall()


def wait_until(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.2)


def project_for(database: Postgres, **env: str) -> Project:
    project = Project(database.url, None, settings="tests.settings_workers", **env)
    project.manage("migrate", "--run-syncdb", "--verbosity", "0")
    return project


def test_four_workers_process_2000_events_exactly_once_and_all_share_the_work(
    database,
) -> None:
    project = project_for(database)
    project.manage(
        "shell", "-c", CREATE_EVENTS.replace("PAYLOAD", "{}").replace("COUNT", "2000")
    )
    workers = [project.worker("--concurrency", "4") for _ in range(4)]
    try:
        wait_until(
            lambda: (
                query(
                    database,
                    "SELECT count(*) FROM webhooks_event WHERE status = 'succeeded'",
                )[0][0]
                == 2000
            )
        )
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=60) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0], outputs
    calls, events, pids = query(
        database,
        "SELECT count(*), count(DISTINCT event_id), count(DISTINCT pid) FROM workerapp_call",
    )[0]
    assert (calls, events) == (2000, 2000)  # no event ran twice, none was missed
    assert pids == 4  # every worker did work
    assert query(database, "SELECT max(attempts) FROM webhooks_event")[0][0] == 1


def test_killed_worker_mid_handler_the_event_runs_again_after_the_lease(
    database, tmp_path: Path
) -> None:
    project = project_for(database)
    marker = tmp_path / "started"
    payload = repr({"marker": str(marker), "sleep": 60})
    project.manage(
        "shell", "-c", CREATE_EVENTS.replace("PAYLOAD", payload).replace("COUNT", "1")
    )
    doomed = project.worker("--concurrency", "1")
    wait_until(marker.exists, timeout=60)
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate()
    assert query(database, "SELECT status FROM webhooks_event")[0][0] == "processing"

    survivor = project.worker("--concurrency", "1")
    try:
        wait_until(
            lambda: (
                query(database, "SELECT status FROM webhooks_event")[0][0]
                == "succeeded"
            ),
            timeout=60,
        )
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.communicate(timeout=60)
    assert query(database, "SELECT attempts FROM webhooks_event")[0][0] == 2
    assert query(database, "SELECT attempt FROM workerapp_call") == [(2,)]
    outcomes = query(
        database, "SELECT number, outcome FROM webhooks_attempt ORDER BY number"
    )
    # The killed run left no attempt: its record rolled back with its handler's write
    # (attempts = 2 still counts it).
    assert outcomes == [(2, "succeeded")]


def test_sigterm_lets_a_running_handler_finish(database, tmp_path: Path) -> None:
    project = project_for(database)
    marker = tmp_path / "started"
    payload = repr({"marker": str(marker), "sleep": 2})
    project.manage(
        "shell", "-c", CREATE_EVENTS.replace("PAYLOAD", payload).replace("COUNT", "1")
    )
    worker = project.worker("--concurrency", "1")
    wait_until(marker.exists, timeout=60)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "stopped after 1 event(s)" in out
    assert query(database, "SELECT status FROM webhooks_event")[0][0] == "succeeded"


def test_inline_mode_processes_a_posted_event_inside_daphne(database) -> None:
    project = project_for(database, WEBHOOKS_PROCESSING="inline")
    project.manage(
        "webhooks_endpoint", "add", "gh", "--provider", "github", "--secret", "s3cret"
    )
    project.manage(
        "shell",
        "-c",
        "from webhooks.models import Endpoint; Endpoint.objects.create(slug='open', provider='none')",
    )
    port = project.serve()
    try:
        answer = post_github(port, "open", "unused", {"hello": "inline"})
        assert answer["http_status"] == 200
        try:
            wait_until(
                lambda: (
                    query(
                        database,
                        f"SELECT status FROM webhooks_event WHERE id = {answer['id']}",
                    )[0][0]
                    == "succeeded"
                ),
                timeout=30,
            )
        except TimeoutError:
            pytest.fail(
                f"event not processed inline; server log:\n{project.log(port)[-3000:]}"
            )
    finally:
        project.stop_all()
    assert query(database, "SELECT count(*) FROM workerapp_call")[0][0] == 1


def test_a_worker_polling_once_an_hour_is_woken_by_notify(database) -> None:
    project = project_for(
        database, WEBHOOKS_PROCESSING="worker", WEBHOOKS_POLL_SECONDS="3600"
    )
    project.manage(
        "shell",
        "-c",
        "from webhooks.models import Endpoint; Endpoint.objects.create(slug='open', provider='none')",
    )
    port = project.serve()
    worker = project.worker("--concurrency", "1")
    try:
        assert worker.stdout is not None
        assert "processing with 1 thread(s)" in worker.stdout.readline()  # listening

        def status(event_id: object) -> str:
            return str(
                query(
                    database, f"SELECT status FROM webhooks_event WHERE id = {event_id}"
                )[0][0]
            )

        for n in range(2):
            # The second arrives while the worker waits on its hour-long poll.
            time.sleep(1)
            answer = post_github(port, "open", "unused", {"n": n})
            assert answer["http_status"] == 200
            wait_until(lambda id=answer["id"]: status(id) == "succeeded", timeout=30)
    finally:
        project.stop_all()
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    assert query(
        database, "SELECT count(*), min(pid), max(pid) FROM workerapp_call"
    ) == [(2, worker.pid, worker.pid)]
