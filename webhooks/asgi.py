"""A lean ASGI front door for deliveries.

Providers need none of a site's middleware: no session, no user, no CSRF token,
no messages. Under ASGI each synchronous middleware costs two thread
hand-offs per request, so :func:`deliveries_first` sends requests under the
webhooks prefix to a Django handler that runs no middleware at all, and
refuses an oversized body by its declared length before reading any of it.
Everything else goes to the site's own application unchanged::

    application = ProtocolTypeRouter({
        "http": deliveries_first(get_asgi_application(), prefix="/webhooks/"),
        ...
    })
"""

from __future__ import annotations

from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

from webhooks import answers
from webhooks.conf import conf
from webhooks.delivery import Answer

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
        await super().handle(scope, receive, send)


def declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def send_answer(send: Any, answer: Answer) -> None:
    headers = [(b"content-type", answer.content_type.encode())]
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

    async def router(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(prefix):
            await deliveries(scope, receive, send)
        else:
            await application(scope, receive, send)

    return router
