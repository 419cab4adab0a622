"""The breaker: tripped by a real connection failure, it keeps ingest from asking the database.

The database's address is pointed at a local socket that accepts each
connection and closes it at once, as a server going away does; the socket
counts the connection attempts. While the breaker is open no delivery adds
one, through either door; once the address is right again, the probe closes
the breaker by itself and deliveries are stored. How fast a 503 comes back is
measured in the bench (bench/outage.py), not here.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.db import DatabaseError, OperationalError, connection, connections
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_both_doors import DOORS, Request
from tests.webhooks.ingest.test_views import SECRET, github_headers
from webhooks.ingest import endpoints as lookup
from webhooks.ingest.breaker import Breaker, breaker, connection_lost
from webhooks.models import Event, Rejection

postgres = pytest.mark.postgres


class ClosingServer:
    """Accepts TCP connections and closes each at once, counting them."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                peer, _ = self.socket.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            peer.close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def closing_server() -> Iterator[ClosingServer]:
    server = ClosingServer()
    yield server
    server.close()


@pytest.fixture
def slow_probe() -> Iterator[None]:
    """No probe runs until the test asks for one (probe_now)."""
    saved = breaker.probe_seconds
    breaker.probe_seconds = 3600
    yield
    breaker.probe_seconds = saved
    breaker.probe_now()  # let a waiting probe end once the database is back


def point_at(port: int | str) -> None:
    """Close this thread's connection and point new ones at ``port``."""
    connections["default"].close()
    connections["default"].settings_dict["PORT"] = str(port)


def wait_until_closed(timeout: float = 30) -> None:
    breaker.probe_now()
    deadline = time.monotonic() + timeout
    while breaker.open:
        assert time.monotonic() < deadline, "the probe never closed the breaker"
        time.sleep(0.02)


# -- telling a connection failure from a statement's ---------------------------------


@postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_refused_is_a_connection_failure(closing_server) -> None:
    original = connection.settings_dict["PORT"]
    point_at(closing_server.port)
    try:
        with pytest.raises(OperationalError) as caught:
            connection.ensure_connection()
    finally:
        point_at(original)
    assert connection_lost(caught.value)


@postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "sql",
    [
        "SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)",  # 57014
        "SELECT 1 / 0",  # 22012
        "SELECT * FROM no_such_table",  # 42P01
        "SELECT pg_terminate_backend(pg_backend_pid())",  # 57P01, the server is up
    ],
    ids=["statement-timeout", "division-by-zero", "no-such-table", "session-ended"],
)
def test_a_failed_statement_is_not_a_connection_failure(sql: str) -> None:
    with pytest.raises(DatabaseError) as caught, connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(sql)
    connection.close()
    assert not connection_lost(caught.value)


def test_no_sqlite_error_trips_it() -> None:
    # A memory database of its own, wrapped as Django wraps driver errors, so the
    # test runs on every lane whatever database the lane uses.
    raw = sqlite3.connect(":memory:")
    try:
        with pytest.raises(sqlite3.OperationalError) as driver_error:
            raw.execute("SELECT * FROM no_such_table")
    finally:
        raw.close()
    error = OperationalError(*driver_error.value.args)
    error.__cause__ = driver_error.value
    assert not connection_lost(error)


def test_an_error_of_another_kind_never_trips_it() -> None:
    own = Breaker(probe_seconds=3600)
    own.saw(ValueError("not the database"))
    own.saw(DatabaseError("no driver error behind it"))
    assert not own.open


# -- through the doors ---------------------------------------------------------------


@postgres
@pytest.mark.django_db(transaction=True)
def test_view_door_asks_nothing_while_open_and_stores_again_after(
    closing_server, slow_probe
) -> None:
    make_endpoint("gh", "github", SECRET)
    original = connection.settings_dict["PORT"]
    client = Client()

    def post(body: bytes, secret: str = SECRET):
        return client.post(
            "/webhooks/gh/",
            body,
            content_type="application/json",
            headers=github_headers(body, secret),
        )

    point_at(closing_server.port)
    try:
        tripping = post(b'{"n": 0}')
        assert tripping.status_code == 503
        assert breaker.open
        attempts = closing_server.accepted
        assert attempts >= 1  # the attempt that failed and tripped it
        while_open = [post(f'{{"n": {n}}}'.encode()) for n in range(1, 21)]
        assert {r.status_code for r in while_open} == {503}
        assert all(r["Retry-After"] == "30" for r in while_open)
        assert all(r.json() == {"error": "unavailable"} for r in while_open)
        assert closing_server.accepted == attempts  # not one more connection attempt
    finally:
        point_at(original)
    wait_until_closed()
    assert post(b'{"n": 21}').status_code == 200
    assert Event.objects.count() == 1


@postgres
@pytest.mark.asyncio
@pytest.mark.usefixtures("async_db_connections")
@pytest.mark.django_db(transaction=True)
async def test_asgi_door_asks_nothing_while_open(closing_server, slow_probe) -> None:
    await sync_to_async(make_endpoint)("gh", "github", SECRET)
    await sync_to_async(make_endpoint)(
        "walled", "github", SECRET, allowed_networks=["10.0.0.0/8"]
    )
    await sync_to_async(lookup.find)("gh")  # kept: decided in the event loop
    await sync_to_async(lookup.find)("walled")
    original = connection.settings_dict["PORT"]
    await sync_to_async(point_at)(closing_server.port)
    try:
        tripping = await DOORS["asgi"](Request(path="/webhooks/unknown/"))
        assert tripping.status == 503
        assert breaker.open
        attempts = closing_server.accepted
        assert attempts >= 1

        def request(body: bytes, secret: str = SECRET, slug: str = "gh") -> Request:
            headers = github_headers(body, secret)
            return Request(path=f"/webhooks/{slug}/", body=body, headers=headers)

        genuine = await DOORS["asgi"](request(b'{"n": 1}'))
        forged = await DOORS["asgi"](request(b'{"n": 2}', secret="wrong"))
        unknown = await DOORS["asgi"](request(b'{"n": 3}', slug="nope"))
        walled = await DOORS["asgi"](request(b'{"n": 4}', slug="walled"))
        assert closing_server.accepted == attempts  # not one more connection attempt
    finally:
        await sync_to_async(point_at)(original)
    unavailable = (503, {"error": "unavailable"})
    # Storing, checking fresh secrets, finding an endpoint: each needs the database.
    assert (genuine.status, genuine.body) == unavailable
    assert (forged.status, forged.body) == unavailable
    assert (unknown.status, unknown.body) == unavailable
    # A refusal that needs no database is answered as ever, though not recorded.
    assert (walled.status, walled.body["reason"]) == (403, "ip_not_allowed")
    assert await Rejection.objects.acount() == 0
    await sync_to_async(wait_until_closed)()
    stored = await DOORS["asgi"](request(b'{"n": 5}'))
    assert stored.status == 200


@postgres
@pytest.mark.django_db(transaction=True)
def test_the_probe_keeps_it_open_while_the_database_is_away(closing_server) -> None:
    own = Breaker(probe_seconds=3600)
    original = connection.settings_dict["PORT"]
    point_at(closing_server.port)
    try:
        with pytest.raises(OperationalError) as caught:
            connection.ensure_connection()
        own.saw(caught.value)
        assert own.open
        for failed in (1, 2):
            own.probe_now()
            deadline = time.monotonic() + 30
            while own.failed_probes < failed:
                assert time.monotonic() < deadline, "the probe never ran"
                time.sleep(0.02)
            assert own.open
    finally:
        point_at(original)
    own.probe_now()
    deadline = time.monotonic() + 30
    while own.open:
        assert time.monotonic() < deadline, "the probe never closed it"
        time.sleep(0.02)
    assert own.trips == 1
