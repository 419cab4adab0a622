"""Inserting a batch of events in one round trip.

On PostgreSQL the rows go as parameters of one pipelined ``executemany`` on a
server-binding cursor. Django's own cursors bind on the client: they quote
every value into the SQL text, which for a batch of kilobyte bodies costs more
CPU than everything else a delivery does, and a text that changes with the
batch size defeats psycopg's query cache. Values are still prepared by the
model's fields, exactly as ``save()`` would. Elsewhere ``bulk_create`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.db import connections, router
from django.db.models import Field

from webhooks.models import Event


def insert_events(events: Sequence[Event]) -> None:
    """INSERT ``events`` in the current transaction and set their primary keys."""
    connection = connections[router.db_for_write(Event)]
    if connection.vendor != "postgresql" or not events:
        Event.objects.bulk_create(events)
        return
    import psycopg  # only PostgreSQL projects have it

    fields = insert_fields()
    rows = [
        [
            field.get_db_prep_save(field.pre_save(event, True), connection)
            for field in fields
        ]
        for event in events
    ]
    connection.ensure_connection()
    # Django's exceptions (IntegrityError for a duplicate), as its own cursors raise.
    with (
        connection.wrap_database_errors,
        psycopg.Cursor(connection.connection) as cursor,
    ):
        cursor.executemany(insert_sql(), rows, returning=True)
        for event in events:
            row = cursor.fetchone()
            assert row is not None  # RETURNING gives one row per INSERT
            event.pk = row[0]
            event._state.adding = False
            event._state.db = connection.alias
            cursor.nextset()


@functools.cache
def insert_fields() -> list[Field[object, object]]:
    return [field for field in Event._meta.concrete_fields if not field.primary_key]


@functools.cache
def insert_sql() -> str:
    """The one-row INSERT, in PostgreSQL's quoting."""
    columns = ", ".join(f'"{field.column}"' for field in insert_fields())
    placeholders = ", ".join(["%s"] * len(insert_fields()))
    return (
        f'INSERT INTO "{Event._meta.db_table}" ({columns}) '
        f'VALUES ({placeholders}) RETURNING "{Event._meta.pk.column}"'
    )
