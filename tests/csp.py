"""A strict Content-Security-Policy for the browser test's server (Django 5.2 has none built in)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

#: What the live page must work under: no inline script or style, no CDN.
POLICY = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:"


def strict_csp(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response["Content-Security-Policy"] = POLICY
        return response

    return middleware
