from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError

from realtime import access, hub, queries
from realtime.conf import conf
from realtime.wire import message
from webhooks.processing import replay

#: The session ended or no longer allows the feed: the handshake's 403, in the 4000s.
CLOSE_ACCESS_ENDED = 4403

logger = logging.getLogger("realtime")


class EventFeedConsumer(AsyncWebsocketConsumer):
    """The live page's socket: hello and snapshot, then the hub's frames; resume, replay, ping.

    Staff with ``webhooks.view_event`` only: anyone else is closed before the
    handshake completes, which the server answers with HTTP 403.
    """

    # The process's hub is the one listener on the channel layer; sockets need no
    # channel of their own. An alias with no layer configured gives None.
    channel_layer_alias = "realtime.sockets-use-the-hub"

    subscriber: hub.Subscriber | None = None
    watcher: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user: Any = self.scope.get("user")
        # One hop to the database before the handshake completes, on a thread of
        # its own rather than in line behind every other socket's session lookup:
        # a thousand pages reconnecting at once must each be answered within the
        # server's handshake timeout.
        can_view, self.can_replay = await queries.apart(queries.access, user)
        if not can_view:
            await self.close()
            return
        await self.accept()
        # Join before reading the snapshot, so nothing falls between the two;
        # the page merges by id, so an event in both is shown once. The snapshot
        # is shared by the sockets that join before the next message.
        self.subscriber = await hub.join(self)
        latest, snapshot = await hub.snapshot()
        await self.send_message(
            "hello",
            user=user.get_username(),
            can_replay=self.can_replay,
            latest_id=latest,
        )
        await self.send(text_data=snapshot.text)
        self.subscriber.start()
        if conf.RECHECK_SECONDS > 0:
            self.watcher = asyncio.create_task(self.watch_access(user.pk))

    async def disconnect(self, code: int) -> None:
        if self.watcher is not None and self.watcher is not asyncio.current_task():
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        if self.subscriber is not None:
            await hub.leave(self.subscriber)

    async def watch_access(self, user_id: Any) -> None:
        """Close the socket once its session no longer allows the feed.

        Off the message path: one re-read every REALTIME_RECHECK_SECONDS.
        """
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        while True:
            await asyncio.sleep(conf.RECHECK_SECONDS)
            try:
                now = await database_sync_to_async(access.still_allowed)(
                    session_key, user_id
                )
            except DatabaseError:
                # Unknown is not revoked: keep the socket and ask again next time.
                logger.warning(
                    "Could not re-check a live socket's access", exc_info=True
                )
                continue
            if not now.view:
                await self.close(CLOSE_ACCESS_ENDED)
                return
            self.can_replay = now.replay

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        # Every frame a client can send is answered within the contract and the
        # socket stays open: no exception, and no close code of our own, as the
        # server would refuse one outside 1000 and 3000-4999 (1009 became 1011).
        if text_data is None:
            await self.send_error("bad_message", "send JSON text frames")
            return
        if utf8_size(text_data) > conf.MAX_FRAME_BYTES:
            await self.send_error(
                "bad_message", f"frames are at most {conf.MAX_FRAME_BYTES} bytes"
            )
            return
        try:
            request = json.loads(text_data)
        except (ValueError, RecursionError):
            # RecursionError: arrays nested a few thousand deep fit in a frame.
            await self.send_error("bad_message", "not JSON")
            return
        kind = request.get("type") if isinstance(request, dict) else None
        if kind == "ping":
            await self.send_message("pong")
        elif kind == "resume":
            await self.resume(request.get("after_id"))
        elif kind == "replay":
            await self.replay(request.get("id"))
        else:
            await self.send_error("bad_message", "type must be resume, replay or ping")

    async def resume(self, after_id: Any) -> None:
        if not is_id(after_id, minimum=0):
            await self.send_error(
                "bad_message", "after_id must be a non-negative integer"
            )
            return
        events, complete = await database_sync_to_async(queries.events_after)(
            after_id, conf.RESUME_LIMIT
        )
        await self.send_message("resumed", events=events, complete=complete)

    async def replay(self, event_id: Any) -> None:
        if not self.can_replay:
            await self.send_error(
                "forbidden", "replay needs the webhooks.change_event permission"
            )
        elif not is_id(event_id, minimum=1):
            await self.send_error("bad_message", "id must be a positive integer")
        elif await database_sync_to_async(replay.replay)(event_id) is None:
            await self.send_error("not_found", f"no event {event_id}")

    async def send_message(self, kind: str, **fields: Any) -> None:
        await self.send(
            text_data=json.dumps(message(kind, **fields), separators=(",", ":"))
        )

    async def send_error(self, error: str, detail: str) -> None:
        await self.send_message("error", error=error, detail=detail)


def is_id(value: Any, *, minimum: int) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and minimum <= value < 2**63
    )


def utf8_size(text: str) -> int:
    # A server hands over only valid UTF-8; a lone surrogate from anywhere else
    # still has a size, and is answered "not JSON" like any other garbage.
    return len(text.encode("utf-8", "surrogatepass"))
