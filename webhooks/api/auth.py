"""Bearer-token authentication for the API views (there is no session or user middleware)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse

from webhooks.api import responses, tokens
from webhooks.models import ApiToken

TokenView = Callable[..., HttpResponse]


def check(request: HttpRequest, *, replay: bool = False) -> ApiToken | tokens.Refusal:
    return tokens.authenticate(
        tokens.bearer(request.headers.get("Authorization")), replay=replay
    )


def token_required(*, replay: bool = False) -> Callable[[TokenView], TokenView]:
    """Call the view with the request's live token, or answer 401/403 in JSON."""

    def decorate(view: TokenView) -> TokenView:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            result = check(request, replay=replay)
            if isinstance(result, tokens.Refusal):
                return responses.refused(result)
            return view(request, result, *args, **kwargs)

        return wrapper

    return decorate
