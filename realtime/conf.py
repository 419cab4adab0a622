"""The live dashboard's settings, read from Django settings (kept as webhooks.conf explains)."""

from __future__ import annotations

from typing import cast

from webhooks.conf import setting


class Settings:
    @property
    def GROUP(self) -> str:
        """Channel-layer group every server process's hub joins."""
        return cast(str, setting("REALTIME_GROUP", "webhooks.live"))

    @property
    def SNAPSHOT_SIZE(self) -> int:
        return cast(int, setting("REALTIME_SNAPSHOT_SIZE", 50))

    @property
    def RESUME_LIMIT(self) -> int:
        return cast(int, setting("REALTIME_RESUME_LIMIT", 500))

    @property
    def TICK_SECONDS(self) -> float:
        """Shortest time between two frames to every socket: a burst arriving within
        it shares one frame (the first message after a quiet tick goes at once)."""
        return cast(float, setting("REALTIME_TICK_SECONDS", 0.005))

    @property
    def MAX_FRAMES_PER_SECOND(self) -> float:
        """Frames a server process sends to all its sockets per second, at most (sets the tick)."""
        return cast(float, setting("REALTIME_MAX_FRAMES_PER_SECOND", 10_000.0))

    @property
    def SOCKET_QUEUE_FRAMES(self) -> int:
        """Frames a socket may have waiting; past that it is closed and resumes on reconnect."""
        return cast(int, setting("REALTIME_SOCKET_QUEUE_FRAMES", 200))

    @property
    def SEND_TIMEOUT_SECONDS(self) -> float:
        """Longest a delivery waits on the channel layer before its broadcast is dropped."""
        return cast(float, setting("REALTIME_SEND_TIMEOUT_SECONDS", 0.25))

    @property
    def MAX_FRAME_BYTES(self) -> int:
        """Largest client frame read; a larger one is answered with a ``bad_message`` error."""
        return cast(int, setting("REALTIME_MAX_FRAME_BYTES", 4096))

    @property
    def RECHECK_SECONDS(self) -> float:
        """How often an open socket re-reads its session and user; 0 turns it off.

        A socket outlives the session it was opened with: on logout, expiry, or
        the user losing staff status or the permission it is closed within this time.
        """
        return cast(float, setting("REALTIME_RECHECK_SECONDS", 30.0))

    @property
    def RATES_SECONDS(self) -> float:
        """How often the live page asks the server for its rates, chart and queue figures."""
        return cast(float, setting("REALTIME_RATES_SECONDS", 5.0))


conf = Settings()
