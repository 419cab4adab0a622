"""The task modes with real task workers over PostgreSQL: django-tasks-db's
``db_worker`` (tasks) and a Celery worker on the local Redis (celery), deliveries
posted to daphne.

In each mode: every delivery ends succeeded, a handler failing twice succeeds on
its third attempt, a message lost before it ran is processed after the sweep, a
task delivered twice runs the handler once, and a task worker killed inside a
handler that wrote a row leaves that row written exactly once in the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.servers import ROOT, Postgres, Project

pytestmark = pytest.mark.postgres

REDIS = "redis://127.0.0.1:6379/0"


def query(database: Postgres, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(database.url.replace("postgres://", "postgresql://")) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


def wait_until(condition: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.2)


@dataclass
class Setup:
    mode: str
    database: Postgres
    project: Project
    queue: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)

    def task_worker(self) -> subprocess.Popen[bytes]:
        """django-tasks-db's db_worker, or a Celery worker (one task at a time)."""
        if self.mode == "tasks":
            command = [sys.executable, "manage.py", "db_worker"]
            command += ["--interval", "0.1", "--no-startup-delay"]
        else:
            # `python -m` puts the project first on the path: a `tests` package that a
            # dependency installs into site-packages would otherwise shadow ours.
            command = [sys.executable, "-m", "celery"]
            command += ["-A", "tests.workerapp.celery_app", "worker"]
            command += ["--pool", "solo", "-Q", self.queue, "--loglevel", "WARNING"]
            command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        return self._start(command)

    def sweeper(self) -> subprocess.Popen[bytes]:
        """webhooks_worker in a task mode: it sweeps every WEBHOOKS_POLL_SECONDS."""
        return self._start([sys.executable, "manage.py", "webhooks_worker"])

    def _start(self, command: list[str]) -> subprocess.Popen[bytes]:
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed in stop_all)
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.project.env, stdout=log, stderr=log
        )
        self.processes.append(process)
        self.logs.append(log)
        return process

    def output(self) -> str:
        text = []
        for log in self.logs:
            log.seek(0)
            text.append(log.read()[-3000:])
        return "\n---\n".join(text)

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        self.project.stop_all()

    def drop_messages(self) -> None:
        """Lose every task message waiting in the broker."""
        if self.mode == "tasks":
            query(self.database, "DELETE FROM django_tasks_database_dbtaskresult")
        else:
            import redis

            redis.Redis.from_url(REDIS).delete(self.queue)

    def waiting_messages(self) -> int:
        if self.mode == "tasks":
            return int(
                query(
                    self.database,
                    "SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE status = 'READY'",
                )[0][0]
            )
        import redis

        return int(redis.Redis.from_url(REDIS).llen(self.queue))

    def statuses(self) -> dict[str, int]:
        return dict(
            query(
                self.database, "SELECT status, count(*) FROM webhooks_event GROUP BY 1"
            )
        )

    def calls(self, event_id: int) -> list[tuple]:
        return query(
            self.database,
            "SELECT attempt FROM workerapp_call WHERE event_id = %s ORDER BY id",
            event_id,
        )


@pytest.fixture(scope="module", params=["tasks", "celery"])
def prepared(request) -> Iterator[tuple[str, Postgres, Project, str]]:
    """A migrated database with the open endpoint, per mode (shared by its tests)."""
    database = Postgres()
    database.create()
    queue = f"webhooks-tests-{uuid.uuid4().hex[:8]}"
    project = Project(
        database.url,
        None,
        settings="tests.settings_workers",
        WEBHOOKS_PROCESSING=request.param,
        CELERY_BROKER_URL=REDIS,
        WEBHOOKS_CELERY_QUEUE=queue,
        PYTHONUNBUFFERED="1",
    )
    try:
        project.manage("migrate", "--run-syncdb", "--verbosity", "0")
        project.manage(
            "shell",
            "-c",
            "from webhooks.models import Endpoint; Endpoint.objects.create(slug='open', provider='none')",
        )
        yield request.param, database, project, queue
    finally:
        database.drop()


@pytest.fixture
def setup(prepared) -> Iterator[Setup]:
    mode, database, project, queue = prepared
    setup = Setup(mode, database, project, queue)
    setup.drop_messages()
    query(database, "TRUNCATE webhooks_attempt, webhooks_event, workerapp_call")
    try:
        yield setup
    finally:
        setup.stop_all()
        for log in setup.logs:
            log.close()
        setup.drop_messages()


def post(port: int, payload: dict[str, object]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/open/",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return int(json.loads(response.read())["id"])


def enqueue_again(setup: Setup, *ids: int) -> None:
    """Send another task for each of these events, as a broker delivering twice would."""
    setup.project.manage(
        "shell", "-c", f"from webhooks import tasks; tasks.enqueue({list(ids)})"
    )


def test_every_delivery_ends_succeeded_and_a_flaky_handler_on_its_third_attempt(
    setup,
) -> None:
    port = setup.project.serve()
    setup.task_worker()
    flaky = post(port, {"fail_times": 2})
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda n: post(port, {"n": n}), range(500)))
    try:
        wait_until(lambda: setup.statuses() == {"succeeded": 501})
    except TimeoutError:
        pytest.fail(f"{setup.statuses()}\n{setup.output()}")
    calls, events = query(
        setup.database,
        "SELECT count(*), count(DISTINCT event_id) FROM workerapp_call WHERE event_id = ANY(%s)",
        ids,
    )[0]
    assert (calls, events) == (500, 500)
    assert query(setup.database, "SELECT max(attempts) FROM webhooks_event WHERE id = ANY(%s)", ids) == [(1,)]  # fmt: skip
    # The two failed runs rolled back their writes; the attempts record all three.
    assert setup.calls(flaky) == [(3,)]
    outcomes = query(
        setup.database,
        "SELECT number, outcome FROM webhooks_attempt WHERE event_id = %s ORDER BY number",
        flaky,
    )
    assert outcomes == [(1, "failed"), (2, "failed"), (3, "succeeded")]


def test_a_lost_message_is_swept_and_a_task_delivered_twice_runs_the_handler_once(
    setup,
) -> None:
    port = setup.project.serve()
    lost, twice = post(port, {"n": 1}), post(port, {"n": 2})
    # Tasks are enqueued once the answers are given: wait for both, then lose them.
    wait_until(lambda: setup.waiting_messages() == 2)
    setup.drop_messages()
    enqueue_again(setup, twice, twice)
    assert setup.waiting_messages() == 2  # none for the lost event
    setup.task_worker()
    wait_until(lambda: setup.waiting_messages() == 0)
    wait_until(lambda: setup.statuses().get("succeeded") == 1)
    assert setup.calls(twice) == [(1,)]
    assert setup.statuses() == {"succeeded": 1, "pending": 1}

    swept = setup.project.manage("webhooks_sweep", "--after", "0")
    assert swept.strip() == "Enqueued 1 overdue event(s) again."
    wait_until(lambda: setup.statuses() == {"succeeded": 2})
    assert setup.calls(lost) == [(1,)]
    assert setup.calls(twice) == [(1,)]


def test_a_task_worker_killed_inside_a_handler_that_wrote_leaves_the_write_once(
    setup, tmp_path: Path
) -> None:
    port = setup.project.serve()
    doomed = setup.task_worker()
    marker = tmp_path / "started"
    event = post(port, {"marker": str(marker), "sleep": 60})
    wait_until(marker.exists)
    setup.kill(doomed)
    assert setup.calls(event) == []  # written, never committed
    setup.task_worker()
    setup.sweeper()  # the lease lapses, the sweep hands the event out again
    try:
        wait_until(lambda: setup.statuses() == {"succeeded": 1})
    except TimeoutError:
        pytest.fail(f"{setup.statuses()}\n{setup.output()}")
    assert setup.calls(event) == [(2,)]
    assert query(setup.database, "SELECT attempts FROM webhooks_event") == [(2,)]
    assert os.path.exists(marker)
