"""The handler registry: which functions run for which provider and event type.

Handlers are registered with :func:`handler` in modules named
``webhook_handlers`` inside installed apps, which the app imports at start-up.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import autodiscover_modules

if TYPE_CHECKING:
    from webhooks.models import Event

HandlerFunction = Callable[["Event"], Any]
OrderKey = Callable[["Event"], "str | None"]

ANY = "*"


@dataclass(frozen=True)
class Handler:
    function: HandlerFunction
    provider: str
    event_type: str
    #: Opt-in ordering: events giving the same key run one at a time, in received order.
    ordered_by: OrderKey | None = None

    @property
    def name(self) -> str:
        return f"{self.function.__module__}.{self.function.__qualname__}"

    def matches(self, provider: str, event_type: str) -> bool:
        return self.provider in (ANY, provider) and (
            self.event_type == ANY or fnmatch.fnmatchcase(event_type, self.event_type)
        )


_registry: list[Handler] = []


def handler(
    provider: str, event_type: str = ANY, *, ordered_by: OrderKey | None = None
) -> Callable[[HandlerFunction], HandlerFunction]:
    """Register the decorated function for ``provider`` events of ``event_type``.

    ``"*"`` matches any provider or type, and shell patterns such as
    ``"customer.subscription.*"`` match families. Several handlers of one event
    run in registration order, each at least once: make them idempotent.
    ``ordered_by(event)`` returning a key (a Stripe customer id, a repository)
    makes events with the same key run one after another in received order;
    None leaves an event unordered.
    """

    def register(function: HandlerFunction) -> HandlerFunction:
        entry = Handler(function, provider, event_type, ordered_by)
        if entry not in _registry:
            _registry.append(entry)
        return function

    return register


def handlers_for(provider: str, event_type: str) -> list[Handler]:
    return [entry for entry in _registry if entry.matches(provider, event_type)]


def ordering_key(event: Event) -> str:
    """The key ordering this event behind earlier ones, or "" when none of its handlers asks."""
    for entry in handlers_for(event.provider, event.event_type):
        if entry.ordered_by is not None:
            key = entry.ordered_by(event)
            if key:
                return f"{entry.name}:{key}"[:255]
    return ""


def discover() -> None:
    autodiscover_modules("webhook_handlers")


def unregister(function: HandlerFunction) -> None:
    """Remove every registration of ``function`` (for tests and reloading)."""
    _registry[:] = [entry for entry in _registry if entry.function is not function]
