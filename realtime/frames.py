"""A hub frame: one message or batch, encoded once for every socket of a process."""

from __future__ import annotations

import json
from typing import Any

from realtime import transports


class Frame:
    """One message or batch for every socket: its JSON text, and the WebSocket frame
    carrying it, built once on first use and then written to each connection."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = transports.text_frame(self.text.encode())
        return self._wire


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def batch_frame(encoded: list[str]) -> str:
    # The messages are JSON already: join them rather than decode and encode again.
    return '{"type":"batch","messages":[' + ",".join(encoded) + "]}"
