"""``stream/``: server-sent events, every stored event after a cursor, then live ones.

Each event goes out as ``id: <event id>``, ``event: event.received`` and its
summary as ``data:``, so a reconnecting ``EventSource`` sends ``Last-Event-ID``
and resumes where it stopped. The stream reads the database with the same
cursor rule as the list (nothing skipped under concurrent inserts); live
news only tells it when to read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.db import close_old_connections
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from webhooks.api import cursor, live, params, responses, tokens
from webhooks.api.auth import check
from webhooks.api.events import summary_rows
from webhooks.api.summaries import event_summary
from webhooks.conf import conf

logger = logging.getLogger("webhooks")

#: Polling interval after the news source was lost, until news arrives again.
DEGRADED_POLL_SECONDS = 1.0
#: Milliseconds an EventSource waits before reconnecting.
RETRY_MS = 2000


def frame(data: dict[str, Any], *, event: str, event_id: int | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines += [f"event: {event}", "data: " + json.dumps(data, separators=(",", ":"))]
    return ("\n".join(lines) + "\n\n").encode()


HEARTBEAT = b": keep-alive\n\n"


@csrf_exempt
@login_not_required
async def stream(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return responses.method_not_allowed("GET")
    result = await sync_to_async(check)(request)
    if isinstance(result, tokens.Refusal):
        return responses.refused(result)
    # Last-Event-ID wins: a reconnecting EventSource repeats the original URL.
    raw_cursor = request.headers.get("Last-Event-ID") or request.GET.get("after_id")
    try:
        after_id = (
            params.integer(raw_cursor, "after_id", default=0, low=0, high=params.MAX_ID)
            if raw_cursor
            else None
        )
        chosen = params.filters(request.GET, allow_status=False)
    except params.BadParameter as exc:
        return responses.bad_request(str(exc))
    raw_token = tokens.bearer(request.headers.get("Authorization"))
    response = StreamingHttpResponse(
        Stream(chosen, after_id, raw_token).frames(), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    # Tells nginx-style proxies not to buffer the stream.
    response["X-Accel-Buffering"] = "no"
    return response


def start_point() -> int:
    """Where a stream without a cursor starts: after every final event."""
    try:
        return cursor.horizon().final_up_to
    finally:
        close_old_connections()


def read(
    chosen: params.Filters, after_id: int
) -> tuple[int, list[dict[str, Any]], bool, float | None]:
    """The next final events after ``after_id``, and when a held-back one settles."""
    try:
        page = cursor.page(chosen.apply(summary_rows()), after_id, params.MAX_LIMIT)
        settles = page.settles_at.timestamp() if page.settles_at else None
        return (
            page.next_after_id,
            [event_summary(event) for event in page.events],
            page.has_more,
            settles,
        )
    finally:
        # A stream lives for hours: give the connection back between reads, as
        # the site's CONN_MAX_AGE would at the end of a request.
        close_old_connections()


def still_allowed(raw_token: str | None) -> bool:
    try:
        return not isinstance(tokens.authenticate(raw_token), tokens.Refusal)
    finally:
        close_old_connections()


class Stream:
    def __init__(
        self, chosen: params.Filters, after_id: int | None, raw_token: str | None
    ) -> None:
        self.chosen = chosen
        self.after_id = after_id
        self.raw_token = raw_token
        self.last_checked = time.monotonic()
        self.wake = asyncio.Event()
        self.source_lost = False
        self.degraded = False
        self.last_sent = 0.0

    # live.Listener
    def news(self) -> None:
        self.degraded = False
        self.wake.set()

    def lost(self) -> None:
        # News published while the source was away is gone: read the database
        # now, and keep polling it until news flows again.
        self.source_lost = self.degraded = True
        self.wake.set()

    async def frames(self) -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        if self.after_id is None:
            self.after_id = await sync_to_async(start_point)()
        # The cursor the stream starts from, so a client without one can keep it.
        yield frame({"after_id": self.after_id}, event="ready")
        self.last_sent = time.monotonic()
        while True:
            self.source_lost = False
            async with contextlib.AsyncExitStack() as stack:
                try:
                    live_news = await stack.enter_async_context(live.subscribe(self))
                except Exception:
                    logger.warning(
                        "Event stream cannot subscribe to news; polling", exc_info=True
                    )
                    live_news = False
                    # Try again after one poll.
                    self.source_lost = self.degraded = True
                while True:
                    # Read after subscribing, so news of an event committed
                    # between the two cannot be missed.
                    self.wake.clear()
                    settles = None
                    async for chunk in self.catch_up():
                        if isinstance(chunk, bytes):
                            yield chunk
                        else:
                            settles = chunk
                    await self.sleep(live_news, settles)
                    if (
                        time.monotonic() - self.last_sent
                        >= conf.STREAM_HEARTBEAT_SECONDS
                    ):
                        yield HEARTBEAT
                        self.last_sent = time.monotonic()
                    if not await self.token_still_valid():
                        yield frame(
                            {"error": "unauthorized", "reason": "invalid_token"},
                            event="error",
                        )
                        return
                    if self.source_lost:
                        break

    async def catch_up(self) -> AsyncIterator[bytes | float | None]:
        """Frames of every final event after the cursor; last, when a held-back one settles."""
        assert self.after_id is not None
        while True:
            after_id, events, more, settles = await sync_to_async(read)(
                self.chosen, self.after_id
            )
            for event in events:
                yield frame(event, event="event.received", event_id=event["id"])
                self.last_sent = time.monotonic()
            self.after_id = after_id
            if not more:
                yield settles
                return

    async def token_still_valid(self) -> bool:
        """Check the token again once per heartbeat period: revoking it ends the stream."""
        if time.monotonic() - self.last_checked < conf.STREAM_HEARTBEAT_SECONDS:
            return True
        self.last_checked = time.monotonic()
        return bool(await sync_to_async(still_allowed)(self.raw_token))

    async def sleep(self, live_news: bool, settles: float | None) -> None:
        timeout = conf.STREAM_HEARTBEAT_SECONDS - (time.monotonic() - self.last_sent)
        if not live_news:
            timeout = min(timeout, conf.STREAM_POLL_SECONDS)
        if self.degraded:
            timeout = min(timeout, DEGRADED_POLL_SECONDS)
        if settles is not None:
            timeout = min(timeout, settles - timezone.now().timestamp() + 0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), max(timeout, 0.05))
