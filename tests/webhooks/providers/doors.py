"""The two front doors a delivery may take, behind the test client's interface.

``view``: Django's test client through the site's middleware to the ingest view.
``asgi``: the tests' ASGI application (``tests.asgi.application``, wrapped in
``deliveries_first`` as the README wires it), called in-process with a scope
built here, with the endpoint warmed into this process's cache before each
request, so that a POST takes the lean door's event-loop path as production
deliveries do. :class:`AsgiClient` offers the test client's ``get``, ``post``,
``put`` and ``generic`` and answers with an :class:`AsgiResponse` that reads
like the test client's response.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from django.utils.datastructures import CaseInsensitiveMapping

from tests.asgi import application
from webhooks.ingest import endpoints as lookup

SLUG_PATH = re.compile(r"^/webhooks/(?P<slug>[^/]+)/$")


class AsgiResponse:
    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.status_code = status
        self.content = body
        self.headers = CaseInsensitiveMapping(
            {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
        )

    def __getitem__(self, name: str) -> str:
        return str(self.headers[name])

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def has_header(self, name: str) -> bool:
        return name in self.headers

    def json(self) -> Any:
        return json.loads(self.content)


class AsgiClient:
    """Requests to the ASGI application, made as a provider's server makes them."""

    def __init__(self, *, host: str = "testserver") -> None:
        self.host = host

    def get(self, path: str, **extra: Any) -> AsgiResponse:
        return self.generic("GET", path, b"", **extra)

    def post(
        self,
        path: str,
        data: bytes = b"",
        content_type: str = "application/octet-stream",
        **extra: Any,
    ) -> AsgiResponse:
        return self.generic("POST", path, data, content_type, **extra)

    def put(
        self,
        path: str,
        data: bytes = b"",
        content_type: str = "application/octet-stream",
        **extra: Any,
    ) -> AsgiResponse:
        return self.generic("PUT", path, data, content_type, **extra)

    def generic(
        self,
        method: str,
        path: str,
        data: bytes | str = b"",
        content_type: str = "",
        *,
        headers: dict[str, str] | None = None,
        REMOTE_ADDR: str = "127.0.0.1",
        secure: bool = False,
    ) -> AsgiResponse:
        body = data.encode() if isinstance(data, str) else data
        parts = urlsplit(path)
        warm(parts.path)
        pairs = [(b"host", self.host.encode())]
        if content_type:
            pairs.append((b"content-type", content_type.encode("latin-1")))
        if body or method in {"POST", "PUT", "PATCH"}:
            pairs.append((b"content-length", str(len(body)).encode()))
        pairs += [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (headers or {}).items()
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "https" if secure else "http",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": pairs,
            "client": (REMOTE_ADDR, 50000),
            "server": (self.host, 443 if secure else 80),
        }
        return async_to_sync(call)(scope, body)


def warm(path: str) -> None:
    """Keep the endpoint of a delivery URL in this process's cache, as traffic would."""
    match = SLUG_PATH.match(path)
    if match:
        lookup.find(match.group("slug"))


async def call(scope: dict[str, Any], body: bytes) -> AsgiResponse:
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        # The request is complete and the client stays: a handler listening for
        # a disconnect waits until it is cancelled once the answer is out.
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(
        m.get("body", b"") for m in sent if m["type"] == "http.response.body"
    )
    return AsgiResponse(start["status"], start.get("headers", []), content)
