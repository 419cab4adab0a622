"""What both group committers share: a batch's outcomes and how they are given.

A batch holds copies of one delivery at most once (:func:`first_copies`); each
waiting delivery is answered with its own outcome (:func:`per_delivery`), in its
event loop (:func:`settle`), and the new events are announced after the answers
have gone (:func:`announce_later`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.db import DatabaseError, OperationalError, close_old_connections

from webhooks.ingest.inserts import NewEvent
from webhooks.ingest.store import announce_received, wake_if_pending
from webhooks.models import Event

logger = logging.getLogger("webhooks")

#: A stored delivery's event id and whether the row is new, or why it was not stored.
Outcome = tuple[int, bool] | BaseException
#: A delivery's identity: (endpoint id, delivery id).
Key = tuple[int, str]

T = TypeVar("T")
#: What a committer holds of a delivery: the row's values, or the model instance.
Row = TypeVar("Row", NewEvent, Event)


class Overloaded(Exception):
    """More deliveries are waiting for a commit than ``WEBHOOKS_MAX_WAITING_COMMITS``."""


def known_down() -> DatabaseError:
    # For deliveries queued before the breaker tripped: answered now, not after
    # a connection attempt that would wait for its timeout.
    return OperationalError("The database is known to be down")


def first_copies(items: Iterable[T], key: Callable[[T], Key]) -> dict[Key, T]:
    """The first of ``items`` for each delivery: the ones a batch stores."""
    first: dict[Key, T] = {}
    for item in items:
        first.setdefault(key(item), item)
    return first


def per_delivery(
    items: Sequence[T],
    first: Mapping[Key, T],
    stored: Mapping[Key, Outcome],
    key: Callable[[T], Key],
    on_copy: Callable[[T], object] | None = None,
) -> list[Outcome]:
    """Each of ``items``' outcome; a later copy of a delivery in the batch is not new."""
    outcomes: list[Outcome] = []
    for item in items:
        outcome = stored[key(item)]
        if isinstance(outcome, tuple) and first[key(item)] is not item:
            outcome = (outcome[0], False)
            if on_copy is not None:
                on_copy(item)
        outcomes.append(outcome)
    return outcomes


def settle(
    answered: Iterable[tuple[Row, asyncio.Future[tuple[int, bool]], Outcome]],
    *,
    wake: bool,
) -> None:
    """In the event loop: answer the waiting deliveries, then announce the new events.

    ``wake`` says whether processing has yet to hear of the new events.
    """
    created: list[Row] = []
    for item, future, outcome in answered:
        if isinstance(outcome, tuple) and outcome[1]:
            created.append(item)
        if future.done():  # the client went away; its event is stored anyway
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    if created:
        announce_later(created, wake=wake)


#: Announcements under way; the loop keeps only weak references to tasks.
_announcing: set[asyncio.Task[None]] = set()


def announce_later(items: Sequence[NewEvent | Event], *, wake: bool) -> None:
    task = asyncio.get_running_loop().create_task(announce(items, wake=wake))
    _announcing.add(task)
    task.add_done_callback(_announcing.discard)


async def announce(items: Sequence[NewEvent | Event], *, wake: bool) -> None:
    # Signal receivers are synchronous code (the dashboards' broadcast among
    # them): one thread hand-off per batch, after the answers have gone.
    try:
        await sync_to_async(announce_in_thread, thread_sensitive=False)(items, wake)
    except Exception:
        logger.exception("Announcing %d new events failed", len(items))


def announce_in_thread(items: Sequence[NewEvent | Event], wake: bool) -> None:
    # Rows become model instances here, off the event loop.
    events = [item.event() if isinstance(item, NewEvent) else item for item in items]
    try:
        announce_received(events)
        if wake:
            wake_if_pending(events)
    finally:
        # Receivers may have queried; release it as a request's end would.
        close_old_connections()
