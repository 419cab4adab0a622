"""The database reads of the live page, as plain synchronous functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

from realtime.wire import summaries
from webhooks.models import Event

T = TypeVar("T")

VIEW_PERMISSION = "webhooks.view_event"
REPLAY_PERMISSION = "webhooks.change_event"


def can_view(user: Any) -> bool:
    # Any: the scope's user is a lazy object, a User or an AnonymousUser.
    return bool(
        user is not None
        and user.is_active
        and getattr(user, "is_staff", False)
        and user.has_perm(VIEW_PERMISSION)
    )


def can_replay(user: Any) -> bool:
    return can_view(user) and user.has_perm(REPLAY_PERMISSION)


def access(user: Any) -> tuple[bool, bool]:
    """Whether ``user`` may view the feed, and replay from it."""
    return can_view(user), can_replay(user)


def snapshot(size: int) -> tuple[int, list[dict[str, Any]]]:
    """The newest event id, and the newest ``size`` summaries, newest first."""
    events = summaries(Event.objects.select_related(None).order_by("-id")[:size])
    latest = events[0]["id"] if events else 0
    return latest, events


def events_after(after_id: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Summaries of events above ``after_id``, oldest first, and whether that is all of them."""
    events = summaries(
        Event.objects.filter(id__gt=after_id).order_by("id")[: limit + 1]
    )
    return events[:limit], len(events) <= limit


async def apart(read: Callable[..., T], *args: Any) -> T:
    """Run a read on a thread of the default pool, not in line on the one thread that
    Channels runs every socket's database work on (its session lookups first): a
    burst of sockets connecting would otherwise queue each read behind all of them.
    The thread's connections are closed after, as the shared thread's are."""

    def closing() -> T:
        try:
            return read(*args)
        finally:
            connections.close_all()

    return await sync_to_async(closing, thread_sensitive=False)()
