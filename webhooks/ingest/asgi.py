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

import dataclasses
import functools
import io
import time
from typing import Any, cast

from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http.request import HttpHeaders
from django.urls import Resolver404, resolve

from webhooks.conf import conf
from webhooks.ingest import answers
from webhooks.ingest.doors import DELIVERY_URL_NAMES, HEADER_NAME, guarded_answer
from webhooks.ingest.loop import ingest_async
from webhooks.ingest.origin import client_ip_of, public_url
from webhooks.observability import metrics
from webhooks.providers.delivery import Answer, Delivery

Scope = dict[str, Any]


class DeliveryHandler(ASGIHandler):
    """Django's ASGI handler without middleware; URL routing and views are unchanged."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        get_response = self._get_response_async  # type: ignore[attr-defined]
        self._middleware_chain = convert_exception_to_response(get_response)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        # A delivery needs none of what Django sets up around a request (its
        # thread-sensitive context among them): the event loop's path hands
        # work to threads of its own.
        if scope["type"] == "http" and scope.get("method") == "POST":
            slug = delivery_slug(scope["path"], scope.get("root_path", ""))
            if slug is not None and declared_length(scope) <= conf.MAX_BODY_BYTES:
                await self.receive_delivery(scope, slug, receive, send)
                return
        await super().__call__(scope, receive, send)

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
        await super().handle(scope, receive, send)

    async def receive_delivery(
        self, scope: Scope, slug: str, receive: Any, send: Any
    ) -> None:
        received_at = time.time()
        try:
            body = await read_body(receive, conf.MAX_BODY_BYTES)
        except RequestAborted:
            return  # the provider hung up: nothing to answer, nothing stored
        if body is None:
            answer = answers.body_too_large()
        else:
            delivery = ScopeDelivery(scope, body, received_at)
            answer = await guarded_answer(slug, delivery, ingest_async)
        metrics.answered(answer.status, time.time() - received_at)
        await send_answer(send, answer)


class ScopeDelivery(Delivery):
    """A delivery read from the ASGI scope, as the view reads it from Django's request.

    Building that request costs more than verifying a signature, and only the
    URL needs it: the URL is worked out, from the same request and by the same
    function as the view's, only when a provider reads it (URL-signing
    providers do).
    """

    def __init__(self, scope: Scope, body: bytes, received_at: float) -> None:
        headers = headers_of(scope)
        client = scope.get("client")
        remote = str(client[0]) if client else ""
        set_field = functools.partial(object.__setattr__, self)
        set_field("method", str(scope["method"]).upper())
        set_field("headers", headers)
        set_field("body", body)
        set_field("source_ip", client_ip_of(remote, headers.get("x-forwarded-for", "")))
        set_field("received_at", received_at)
        set_field("_scope", scope)

    @property
    def url(self) -> str:
        try:
            return cast(str, self.__dict__["_url"])
        except KeyError:
            request = ASGIRequest(self.__dict__["_scope"], io.BytesIO())
            url = self.__dict__["_url"] = public_url(request)
            return url

    @url.setter
    def url(self, value: str) -> None:
        raise dataclasses.FrozenInstanceError("cannot assign to field 'url'")


def headers_of(scope: Scope) -> dict[str, str]:
    """The request headers as the view sees them (see :func:`header_name`)."""
    joined: dict[str, list[str]] = {}
    names: dict[str, str | None] = {}
    for raw, value in scope.get("headers", []):
        key, name = header_name(raw)
        if key is None:
            continue
        names[key] = name
        joined.setdefault(key, []).append(value.decode("latin1"))
    return {
        name: ",".join(joined[key]) for key, name in names.items() if name is not None
    }


@functools.lru_cache(maxsize=512)
def header_name(raw: bytes) -> tuple[str | None, str | None]:
    """Django's META key for a header named ``raw``, and the name the delivery keeps it under.

    As Django's ASGI request reads headers: names with an underscore are
    dropped, repeated headers are joined with commas (a repeated Cookie is
    joined otherwise on Django 6, but a cookie is never stored nor read); then,
    as the view does, names that are not HTTP tokens are dropped and the others
    lower-cased.
    """
    name = raw.decode("latin1")
    if "_" in name:
        return None, None
    if name == "content-length":
        key = "CONTENT_LENGTH"
    elif name == "content-type":
        key = "CONTENT_TYPE"
    else:
        key = "HTTP_" + name.upper().replace("-", "_")
    shown = HttpHeaders.parse_header_name(key)
    if shown is None or not HEADER_NAME.fullmatch(shown):
        return key, None
    return key, shown.lower()


@functools.lru_cache(maxsize=1024)
def delivery_slug(path: str, root_path: str = "") -> str | None:
    """The endpoint slug if ``path`` (under ``root_path``) is a delivery URL, else None.

    Kept per path: a site has few endpoints, and resolving costs more than
    verifying a signature.
    """
    scope = {"type": "http", "method": "POST", "path": path, "root_path": root_path}
    path_info = ASGIRequest(scope, io.BytesIO()).path_info
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
    if setting in ("ROOT_URLCONF", "FORCE_SCRIPT_NAME"):
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
