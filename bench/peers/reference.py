"""The reference receiver: what a careful engineer writes by hand, without Django, to
take signed Stripe deliveries into PostgreSQL as fast as one Python process can.

- a raw ASGI callable: no framework, no request object, no thread;
- the Stripe-Signature check (timestamp within 300 s, HMAC-SHA256, constant time);
- one async psycopg connection, in the event loop;
- group commit: the deliveries that arrive while a batch is being written wait,
  and go together in the next statement (one ``INSERT ... SELECT FROM unnest``);
- each request answered 2xx only after the statement holding its row committed;
  a copy of a stored event answers ``duplicate`` with the first row's id.

It stores what ours stores of a delivery (raw body, headers, source address, event
id and type, the payload as jsonb) so the two do the same work per row.

    DATABASE_URL=postgres://... BENCH_STRIPE_SECRET=... \\
        uvicorn bench.peers.reference:application --lifespan off
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SECRET = os.environ.get("BENCH_STRIPE_SECRET", "whsec_bench").encode()
TOLERANCE = 300
MAX_BODY = 5 * 1024 * 1024
TABLE = "reference_event"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id bigserial PRIMARY KEY,
    delivery_id text NOT NULL UNIQUE,
    event_type text NOT NULL,
    body bytea NOT NULL,
    size integer NOT NULL,
    headers jsonb NOT NULL,
    source_ip inet,
    payload jsonb,
    received_at timestamptz NOT NULL
)"""
INSERT = f"""
INSERT INTO {TABLE}
    (delivery_id, event_type, body, size, headers, source_ip, payload, received_at)
SELECT * FROM unnest(
    %s::text[], %s::text[], %s::bytea[], %s::integer[], %s::jsonb[], %s::inet[],
    %s::jsonb[], %s::timestamptz[])
ON CONFLICT (delivery_id) DO NOTHING
RETURNING delivery_id, id"""
EXISTING = f"SELECT delivery_id, id FROM {TABLE} WHERE delivery_id = ANY(%s)"

Row = tuple[str, str, bytes, int, str, str | None, str, datetime]


class GroupCommit:
    """One connection; the rows waiting when a statement ends go in the next one."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.connection: psycopg.AsyncConnection[Any] | None = None
        self.waiting: list[tuple[Row, asyncio.Future[tuple[int, bool]]]] = []
        self.writing = False

    async def store(self, row: Row) -> tuple[int, bool]:
        future: asyncio.Future[tuple[int, bool]] = (
            asyncio.get_running_loop().create_future()
        )
        self.waiting.append((row, future))
        if not self.writing:
            self.writing = True
            asyncio.get_running_loop().create_task(self.write())
        return await future

    async def write(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                try:
                    stored = await self.insert([row for row, _ in batch])
                except Exception as error:
                    if self.connection is not None:
                        await self.connection.close()
                    self.connection = None
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                first: set[str] = set()
                for row, future in batch:
                    event_id, created = stored[row[0]]
                    new = created and row[0] not in first
                    first.add(row[0])
                    if not future.done():
                        future.set_result((event_id, new))
        finally:
            self.writing = False

    async def insert(self, rows: list[Row]) -> dict[str, tuple[int, bool]]:
        if self.connection is None:
            self.connection = await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True
            )
            await self.connection.execute(SCHEMA)
        # Autocommit: the one statement is its own transaction, committed when it returns.
        columns = [list(column) for column in zip(*rows, strict=True)]
        cursor = await self.connection.execute(INSERT, columns)
        stored = {str(key): (int(pk), True) for key, pk in await cursor.fetchall()}
        missing = [row[0] for row in rows if row[0] not in stored]
        if missing:
            cursor = await self.connection.execute(EXISTING, [missing])
            stored |= {
                str(key): (int(pk), False) for key, pk in await cursor.fetchall()
            }
        return stored


committer = GroupCommit(
    os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    ).replace("postgres://", "postgresql://", 1)
)


def signature_ok(header: str, body: bytes, now: float) -> bool:
    timestamp, signatures = "", []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value.encode())
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE:
        return False
    expected = (
        hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256)
        .hexdigest()
        .encode()
    )
    found = False
    for signature in signatures:  # no early exit: every candidate is compared
        found |= hmac.compare_digest(expected, signature)
    return found


async def answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def application(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    arrived = time.time()
    if scope["method"] != "POST":
        await answer(send, 405, b'{"error":"method_not_allowed"}')
        return
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        more = message.get("more_body", False)
        if size > MAX_BODY:
            await answer(send, 413, b'{"error":"body_too_large"}')
            return
    body = b"".join(chunks)
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
    }
    if not signature_ok(headers.get("stripe-signature", ""), body, arrived):
        await answer(send, 401, b'{"error":"invalid_signature"}')
        return
    try:
        event = json.loads(body)
        delivery_id, event_type = str(event["id"]), str(event.get("type", ""))
    except (ValueError, KeyError, TypeError):
        await answer(send, 400, b'{"error":"bad_event"}')
        return
    client = scope.get("client")
    row: Row = (
        delivery_id,
        event_type,
        body,
        len(body),
        json.dumps(headers),
        client[0] if client else None,
        body.decode(),  # the text itself becomes the jsonb: no re-encoding
        datetime.fromtimestamp(arrived, tz=UTC),
    )
    try:
        event_id, created = await committer.store(row)
    except psycopg.Error:
        await answer(send, 503, b'{"error":"unavailable"}')
        return
    status = b"received" if created else b"duplicate"
    await answer(send, 200, b'{"status":"%s","id":%d}' % (status, event_id))
