"""A strict Content-Security-Policy on every response of the demo project.

The live page claims to work under one (static ES modules and a stylesheet, no
inline script or style, no CDN); the demo sends it, so the claim is exercised
whenever the demo runs. Django 5.2 has no CSP support of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

#: Same-origin everything; the live page's socket (ws: or wss:, as the page's scheme).
POLICY = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response.setdefault("Content-Security-Policy", POLICY)
        return response

    return middleware
