from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.servers import Postgres

SECRET = "fault-secret"


@pytest.fixture
def database() -> Iterator[Postgres]:
    """A database of its own on the shared PostgreSQL server (which keeps running)."""
    database = Postgres()
    database.create()
    yield database
    database.drop()


def query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(sql, params or None).fetchall()


def stored(url: str) -> dict[str, list[int]]:
    """Event ids by delivery id, as the database holds them."""
    rows = query(url, "SELECT delivery_id, id FROM webhooks_event")
    found: dict[str, list[int]] = {}
    for delivery, event_id in rows:
        found.setdefault(delivery, []).append(event_id)
    return found
