"""One event loop's async psycopg connection, opened as Django would open its own.

The PostgreSQL committer (:mod:`webhooks.ingest.loop_committer`) writes on it in
autocommit. It is opened from the alias's settings on first use, and opened
again when those settings name another server or the server closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from django.db import OperationalError, connections, utils

if TYPE_CHECKING:
    import psycopg

#: Executions of a statement after which psycopg prepares it (its own default).
PREPARE_THRESHOLD = 5


class KeptConnection:
    """The connection to ``alias`` that one event loop keeps between batches."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.connection: psycopg.AsyncConnection[Any] | None = None
        self.connected_to: tuple[Any, ...] = ()

    async def open(self) -> psycopg.AsyncConnection[Any]:
        """The kept connection, or a new one; raises ``OperationalError`` if none can be had."""
        settings_dict = connections[self.alias].settings_dict
        target = tuple(settings_dict.get(name) for name in ("HOST", "PORT", "NAME"))
        target += (settings_dict.get("USER"),)
        if self.connection is not None and (
            self.connected_to != target or self.connection.closed
        ):
            await self.close()
        if self.connection is None:
            self.connection = await connect(self.alias)
            self.connected_to = target
        return self.connection

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


async def connect(alias: str) -> psycopg.AsyncConnection[Any]:
    import psycopg  # only PostgreSQL projects have it

    database = connections[alias]
    params = database.get_connection_params()
    params.pop("cursor_factory", None)  # Django's is for blocking connections
    options = database.settings_dict.get("OPTIONS", {})
    if "prepare_threshold" not in options:
        # Django leaves statements unprepared for the sake of transaction-mode
        # poolers; the batch statement is the same text every time, and
        # prepared once it is not parsed and planned again per batch. A
        # project behind such a pooler sets OPTIONS["prepare_threshold"] (None).
        params["prepare_threshold"] = PREPARE_THRESHOLD
    pool = options.get("pool")
    timeout = float(
        (pool.get("timeout") if isinstance(pool, dict) else None)
        or options.get("connect_timeout")
        or 5
    )
    try:
        async with asyncio.timeout(timeout):
            connection = await psycopg.AsyncConnection.connect(
                **params, autocommit=True
            )
        if role := options.get("assume_role"):
            await connection.execute(
                psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role))
            )
    except (psycopg.Error, TimeoutError) as error:
        raise OperationalError(f"Cannot connect to the database: {error}") from error
    return connection


def django_error(error: Exception) -> utils.Error:
    """``error`` from psycopg as the Django exception of the same name, as Django's cursors raise it."""
    import psycopg

    for kind in (
        utils.DataError,
        utils.OperationalError,
        utils.IntegrityError,
        utils.InternalError,
        utils.ProgrammingError,
        utils.NotSupportedError,
        utils.DatabaseError,
        utils.InterfaceError,
    ):
        if isinstance(error, getattr(psycopg, kind.__name__)):
            return kind(*error.args)
    return utils.DatabaseError(*error.args)
