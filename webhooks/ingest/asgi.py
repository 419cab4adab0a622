"""A lean ASGI front door for deliveries.

Providers need none of a site's middleware: no session, no user, no CSRF token,
no messages. Under ASGI each synchronous middleware costs two thread
hand-offs per request, so :func:`deliveries_first` sends requests under the
webhooks prefix to a :class:`DeliveryHandler`: it refuses an oversized body by
its declared length before reading any of it, and takes a POST to an endpoint
URL straight to :func:`~webhooks.ingest.loop.ingest_async`, which verifies it
in the event loop and stores it by group commit, with no thread hand-off at all
in the common case. Other requests under the prefix (health, handshakes by
GET) go through Django's URL routing and views, without middleware, and a
path there that routes nowhere (such as the prefix without its slash) gets the
JSON 404 of an unknown endpoint, in DEBUG too. Everything else goes to the
site's own application unchanged::

    application = ProtocolTypeRouter({
        "http": deliveries_first(get_asgi_application(), prefix="/webhooks/"),
        ...
    })
"""

from __future__ import annotations

import functools
import io
import time
from typing import Any

from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import Resolver404, resolve

from webhooks.conf import conf
from webhooks.delivery import Answer
from webhooks.ingest import answers
from webhooks.ingest.doors import DELIVERY_URL_NAMES, answer_delivery
from webhooks.ingest.loop import ingest_async
from webhooks.observability import metrics

Scope = dict[str, Any]


class DeliveryHandler(ASGIHandler):
    """Django's ASGI handler without middleware; URL routing and views are unchanged."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        get_response = self._get_response_async  # type: ignore[attr-defined]
        self._middleware_chain = convert_exception_to_response(get_response)

    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        if declared_length(scope) > conf.MAX_BODY_BYTES:
            await send_answer(send, answers.body_too_large())
            return
        request = self.request_class(scope, io.BytesIO())
        if not routed(request.path_info):
            # JSON, like every other answer here: no HTML page, no APPEND_SLASH
            # redirect (which cannot keep a POST, and under DEBUG is a 500).
            await send_answer(send, answers.unknown_endpoint())
            return
        if scope.get("method") == "POST":
            slug = delivery_slug(request.path_info)
            if slug is not None:
                await self.receive_delivery(request, slug, receive, send)
                return
        await super().handle(scope, receive, send)

    async def receive_delivery(
        self, request: Any, slug: str, receive: Any, send: Any
    ) -> None:
        received_at = time.time()
        try:
            body = await read_body(receive, conf.MAX_BODY_BYTES)
        except RequestAborted:
            return  # the provider hung up: nothing to answer, nothing stored
        if body is None:
            answer = answers.body_too_large()
        else:
            answer = await answer_delivery(
                request, slug, body, received_at, ingest_async
            )
        metrics.answered(answer.status, time.time() - received_at)
        await send_answer(send, answer)


@functools.lru_cache(maxsize=1024)
def delivery_slug(path_info: str) -> str | None:
    """The endpoint slug if ``path_info`` is a delivery URL, else None.

    Kept per path: a site has few endpoints, and resolving costs more than
    verifying a signature.
    """
    try:
        match = resolve(path_info)
    except Resolver404:
        return None
    if match.url_name not in DELIVERY_URL_NAMES or "webhooks" not in match.app_names:
        return None
    return str(match.kwargs["slug"])


@functools.lru_cache(maxsize=1024)
def routed(path_info: str) -> bool:
    """Whether the URLconf has a view for ``path_info``."""
    try:
        resolve(path_info)
    except Resolver404:
        return False
    return True


@receiver(setting_changed, dispatch_uid="webhooks.ingest.asgi.urlconf_changed")
def _urlconf_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROOT_URLCONF":
        delivery_slug.cache_clear()
        routed.cache_clear()


async def read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or None once it grows past ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def send_answer(send: Any, answer: Answer) -> None:
    headers = [
        (b"content-type", answer.content_type.encode()),
        # Declared, so the server sends the body as is rather than chunked.
        (b"content-length", str(len(answer.body)).encode()),
    ]
    headers += [
        (name.lower().encode(), value.encode())
        for name, value in answer.headers.items()
    ]
    await send(
        {"type": "http.response.start", "status": answer.status, "headers": headers}
    )
    await send({"type": "http.response.body", "body": answer.body})


def deliveries_first(application: Any, *, prefix: str = "/webhooks/") -> Any:
    """Route HTTP requests under ``prefix`` to a :class:`DeliveryHandler`, the rest to ``application``."""
    deliveries = DeliveryHandler()
    bare = prefix.rstrip("/")

    def ours(scope: Scope) -> bool:
        if scope["type"] != "http":
            return False
        path = scope["path"]
        if path.startswith(prefix):
            return True
        if path != bare:
            return False
        # The prefix without its slash, unless the site has a view there.
        request = deliveries.request_class(scope, io.BytesIO())
        return not routed(request.path_info)

    async def router(scope: Scope, receive: Any, send: Any) -> None:
        if ours(scope):
            await deliveries(scope, receive, send)
        else:
            await application(scope, receive, send)

    return router
