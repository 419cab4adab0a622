"""Inserting a batch of events in one statement.

A verified delivery becomes a :class:`NewEvent`: its column values, not a model
instance, since building an ``Event`` costs more than the rest of what a
delivery needs. On PostgreSQL a batch goes as ONE ``INSERT ... SELECT FROM
unnest(...)`` with one array parameter per column (:func:`insert_sql`), on an
async connection (:mod:`webhooks.ingest.loop_committer`), with ``ON CONFLICT DO
NOTHING`` on (endpoint, delivery id): the unique constraint still decides which
copy is first, and the ids of the others are read after. The payload goes to
the JSON column as the body's own text where that gives the same stored value
(:func:`payload_text`), so it is not encoded again. Elsewhere (SQLite) the
events are built and ``bulk_create`` inserts them, from the committer thread.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from webhooks.models import Endpoint, Event

#: Every digit as "0", so that a digit followed by the start of a fraction or an
#: exponent is one of three byte pairs: searching for those is far cheaper than a
#: regular expression, or than encoding the payload again.
DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def may_hold_floats(body: bytes) -> bool:
    """False when no number in ``body`` has a fraction or an exponent, nor is non-finite.

    Conservative: the same bytes inside a string also say True.
    """
    if b"NaN" in body or b"Infinity" in body:
        return True
    digits = body.translate(DIGITS_AS_ZERO)
    return b"0." in digits or b"0e" in digits or b"0E" in digits


@dataclass(slots=True)
class NewEvent:
    """A verified delivery's event, as the values of its columns by attribute name."""

    values: dict[str, Any]
    #: The endpoint row, so that an event built from these values need not read it.
    endpoint: Endpoint
    #: The payload column's JSON text, or None to encode ``values["payload"]``.
    payload_json: str | None = None
    pk: int | None = None
    created: bool = field(default=False)

    @property
    def key(self) -> tuple[int, str]:
        return self.values["endpoint_id"], self.values["delivery_id"]

    def event(self) -> Event:
        """The model instance, as a stored row would be read (for signals and SQLite)."""
        event = Event(**self.values)
        event.endpoint = self.endpoint
        if self.pk is not None:
            event.pk = self.pk
            event._state.adding = False
        return event


def payload_text(body: bytes, payload: Any, parsed_from_body: bool) -> str | None:
    """The body itself as the JSON column's text, when that stores what encoding ``payload`` would.

    Only for a payload parsed as JSON from exactly ``body``: UTF-8 without a
    byte-order mark, and no number with a fraction or exponent (the column keeps
    ``1e2`` as written where Python would store ``100.0``). Whitespace, key
    order, escapes and repeated keys come out the same either way.
    """
    if not parsed_from_body or payload is None or may_hold_floats(body):
        return None
    if json.detect_encoding(body) != "utf-8":
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def insert_events(events: Sequence[Event]) -> None:
    """INSERT ``events`` in the current transaction and set their primary keys (not PostgreSQL)."""
    Event.objects.bulk_create(events)


def database() -> BaseDatabaseWrapper:
    return connections[router.db_for_write(Event)]


@functools.cache
def insert_fields() -> list[Field[Any, Any]]:
    return [f for f in Event._meta.concrete_fields if not f.primary_key]


#: Columns a NewEvent gives per row; every other column takes its field's default.
ROW_COLUMNS = (
    "endpoint_id",
    "provider",
    "delivery_id",
    "event_type",
    "body",
    "size",
    "headers",
    "source_ip",
    "payload",
    "received_at",
    "status",
    "next_attempt_at",
    "ordering_key",
    "trace_parent",
)


def quoting(connection: BaseDatabaseWrapper) -> Callable[[str | None], str]:
    return lambda name: str(connection.ops.quote_name(str(name)))


def array_type(field: Field[Any, Any], connection: BaseDatabaseWrapper) -> str:
    # The type without its length: a cast to varchar(n) would cut a longer value
    # silently, where the INSERT refuses it.
    return re.sub(r"\(\d+\)", "", str(field.db_type(connection))) + "[]"


@functools.cache
def insert_sql(alias: str, notify: str | None) -> str:
    """The batch INSERT: one parameter per default column, then one array per row column.

    The arrays go in binary (``%b``): in text, every element would be escaped
    into the array literal, a kilobyte body byte by byte.

    RETURNING gives the id, endpoint and delivery id of each row inserted; with
    ``notify``, rows stored as pending also ``pg_notify`` that channel, sent at COMMIT.
    """
    connection = connections[alias]
    quote = quoting(connection)
    by_name = {f.attname: f for f in insert_fields()}
    defaults = [f for f in insert_fields() if f.attname not in ROW_COLUMNS]
    columns = ", ".join(quote(by_name[name].column) for name in ROW_COLUMNS)
    columns += "".join(", " + quote(f.column) for f in defaults)
    arrays = ", ".join(
        f"%b::{array_type(by_name[name], connection)}" for name in ROW_COLUMNS
    )
    constants = "".join(f", %s::{array_type(f, connection)[:-2]}" for f in defaults)
    table = quote(Event._meta.db_table)
    pk = quote(Event._meta.pk.column)
    endpoint, delivery = quote(by_name["endpoint_id"].column), quote("delivery_id")
    insert = (
        f"INSERT INTO {table} ({columns}) SELECT *{constants} FROM unnest({arrays}) "
        f"ON CONFLICT ({endpoint}, {delivery}) DO NOTHING "
        f"RETURNING {pk}, {endpoint}, {delivery}, {quote('status')}"
    )
    if notify is None:
        return insert
    return (
        f"WITH stored AS ({insert}) SELECT {pk}, {endpoint}, {delivery}, "
        f"CASE WHEN {quote('status')} = %s THEN pg_notify(%s, '') END FROM stored"
    )


def insert_parameters(
    rows: Sequence[NewEvent], alias: str, notify: str | None
) -> list[Any]:
    """The parameters of :func:`insert_sql` for ``rows``, in the order of its text."""
    connection = connections[alias]
    parameters: list[Any] = [
        default_value(f, connection)
        for f in insert_fields()
        if f.attname not in ROW_COLUMNS
    ]
    for name in ROW_COLUMNS:
        if name == "payload":
            parameters.append([json_text(row) for row in rows])
        elif name == "headers":
            parameters.append([json.dumps(row.values["headers"]) for row in rows])
        else:
            parameters.append([row.values[name] for row in rows])
    if notify is not None:
        parameters += [Event.Status.PENDING.value, notify]
    return parameters


def json_text(row: NewEvent) -> str | None:
    if row.payload_json is not None:
        return row.payload_json
    payload = row.values["payload"]
    return None if payload is None else json.dumps(payload)


def default_value(f: Field[Any, Any], connection: BaseDatabaseWrapper) -> Any:
    value = f.get_default()
    if f.null and value is None:
        return None
    if f.get_internal_type() == "JSONField":
        return json.dumps(value)  # cast by the statement, like the arrays
    return f.get_db_prep_save(value, connection)


def existing_sql(alias: str) -> str:
    """The ids of stored rows for arrays of endpoint ids and delivery ids."""
    quote = quoting(connections[alias])
    return (
        f"SELECT {quote(Event._meta.pk.column)}, {quote('endpoint_id')}, "
        f"{quote('delivery_id')} FROM {quote(Event._meta.db_table)} "
        f"WHERE ({quote('endpoint_id')}, {quote('delivery_id')}) IN "
        "(SELECT * FROM unnest(%s::bigint[], %s::varchar[]))"
    )
