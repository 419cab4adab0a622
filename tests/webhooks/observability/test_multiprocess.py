"""Metrics across processes: a daphne server and a worker sharing PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests.servers import Postgres, Project, post_github
from tests.webhooks.observability.scrape import value

pytestmark = pytest.mark.postgres

OPEN = {"endpoint": "open", "provider": "none"}


def scrape(port: int) -> str:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/metrics/", timeout=10
    ) as answer:
        return answer.read().decode()


def test_the_server_scrape_adds_up_what_the_worker_process_counted(
    tmp_path: Path,
) -> None:
    database = Postgres()
    database.create()
    project = Project(
        database.url,
        None,
        settings="tests.settings_metrics",
        WEBHOOKS_PROCESSING="worker",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    try:
        project.manage("migrate", "--run-syncdb", "--verbosity", "0")
        project.manage(
            "shell",
            "-c",
            "from webhooks.models import Endpoint; Endpoint.objects.create(slug='open', provider='none')",
        )
        port = project.serve()
        for number in range(3):
            answer = post_github(port, "open", "unused", {"n": number})
            assert answer["http_status"] == 200, project.log(port)
        waiting = scrape(port)
        assert value(waiting, "webhooks_deliveries_received_total", **OPEN) == 3
        assert value(waiting, "webhooks_events", status="pending") == 3
        worker = project.worker("--once")
        _, errors = worker.communicate(timeout=120)
        assert worker.returncode == 0, errors
        done = scrape(port)
    finally:
        project.stop_all()
        database.drop()
    # Counted in the worker, an exited process: its files still add up.
    assert (
        value(done, "webhooks_handler_runs_total", provider="none", outcome="succeeded")
        == 3
    )
    assert value(done, "webhooks_deliveries_received_total", **OPEN) == 3
    assert value(done, "webhooks_events", status="succeeded") == 3
    assert value(done, "webhooks_queue_lag_seconds") == 0
    assert list(tmp_path.glob("*.db")), "each process writes its own files"
