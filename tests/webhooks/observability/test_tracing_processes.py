"""The ingest span's context crosses processes with the event: a daphne server stores it,
a worker process links its processing span to it. Both export with the OpenTelemetry SDK."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.servers import Postgres, Project, post_github

pytestmark = pytest.mark.postgres


def test_the_worker_links_its_span_to_the_servers_ingest_span(tmp_path: Path) -> None:
    spans_file = tmp_path / "spans.jsonl"
    database = Postgres()
    database.create()
    project = Project(
        database.url,
        None,
        settings="tests.settings_tracing",
        WEBHOOKS_PROCESSING="worker",
        WEBHOOKS_TEST_SPANS=str(spans_file),
    )
    try:
        project.manage("migrate", "--run-syncdb", "--verbosity", "0")
        project.manage(
            "shell",
            "-c",
            "from webhooks.models import Endpoint; Endpoint.objects.create(slug='open', provider='none')",
        )
        port = project.serve()
        answer = post_github(port, "open", "unused", {"hello": "trace"})
        assert answer["http_status"] == 200, project.log(port)
        worker = project.worker("--once")
        _, errors = worker.communicate(timeout=120)
        assert worker.returncode == 0, errors
    finally:
        project.stop_all()
        database.drop()
    spans = [json.loads(line) for line in spans_file.read_text().splitlines() if line]
    by_name: dict[str, list[dict]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    (ingest,) = by_name["webhooks.ingest"]
    (process,) = by_name["webhooks.process"]
    assert process["attributes"]["webhooks.event_id"] == answer["id"]
    assert [link["context"]["span_id"] for link in process["links"]] == [
        ingest["context"]["span_id"]
    ]
    assert process["links"][0]["context"]["trace_id"] == ingest["context"]["trace_id"]
    # Two processes: the worker's span is no child of the server's.
    assert process["context"]["trace_id"] != ingest["context"]["trace_id"]
