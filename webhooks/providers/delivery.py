"""A delivery as providers see it, and the answer it gets.

Both are plain data, free of Django's request and response classes, so the
verification and storage code can sit behind any front door (the Django view,
a leaner ASGI handler, a test).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Delivery:
    method: str
    #: Request headers with lower-case names.
    headers: Mapping[str, str]
    body: bytes
    source_ip: str | None
    #: The URL the provider called, with its query string, as seen from outside.
    url: str
    #: Unix time the delivery arrived.
    received_at: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, status: int, data: Any, headers: Mapping[str, str] | None = None
    ) -> Answer:
        return cls(status, json.dumps(data).encode(), "application/json", headers or {})

    @classmethod
    def text(cls, status: int, text: str) -> Answer:
        return cls(status, text.encode(), "text/plain; charset=utf-8")
