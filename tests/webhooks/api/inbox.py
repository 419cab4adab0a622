"""A real inbox for the stream and relay tests: daphne processes of the demo project,
on PostgreSQL in the PostgreSQL lane and on an SQLite file otherwise."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from django.conf import settings

from tests.servers import Postgres, Project, Redis
from webhooks.relay.client import ServerEvent, parse_stream

GITHUB_SECRET = "gh-secret"


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


@contextlib.contextmanager
def database() -> Iterator[str]:
    if on_postgres():
        postgres = Postgres()
        postgres.create()
        try:
            yield postgres.url
        finally:
            postgres.drop()
    else:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'inbox.sqlite3'}"


@contextlib.contextmanager
def inbox(redis: Redis | None = None, **env: str) -> Iterator[Project]:
    """A migrated project with a GitHub endpoint ``gh``; servers are started by the test."""
    with database() as url:
        project = Project(
            url, redis.url if redis else None, settings="tests.settings_stream", **env
        )
        try:
            project.manage("migrate", "--verbosity", "0")
            project.manage(
                "webhooks_endpoint", "add", "gh", "--provider", "github",
                "--secret", GITHUB_SECRET,
            )  # fmt: skip
            yield project
        finally:
            project.stop_all()


def api_token(project: Project, scope: str = "read") -> str:
    project.manage(
        "shell", "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.create_superuser('bot', 'bot@example.com', 'pw')",
    )  # fmt: skip
    output = project.manage("webhooks_token", "create", "bot", "--scope", scope)
    return output.strip().splitlines()[-1]


class EventStream:
    """An SSE client on a real connection: the events and comments as they arrive."""

    def __init__(
        self, port: int, token: str, *, last_event_id: int | None = None, **query: str
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        # A bound on each read, so a missing event fails the test instead of hanging it.
        self.client = httpx.Client(timeout=httpx.Timeout(20.0))
        self._context = self.client.stream(
            "GET",
            f"http://127.0.0.1:{port}/webhooks/api/stream/",
            headers=headers,
            params=query,
        )
        self.response = self._context.__enter__()
        self._lines = self.response.iter_lines()
        self.events = parse_stream(self._lines)

    def next_line(self) -> str:
        return next(self._lines)

    def next(self, kind: str = "event.received") -> ServerEvent:
        for event in self.events:
            if event.event == kind:
                return event
        raise AssertionError(f"the stream ended before a {kind} event")

    def close(self) -> None:
        self._context.__exit__(None, None, None)
        self.client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
