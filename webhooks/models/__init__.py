"""The app's models, one module per concept; Django and callers import them from here."""

from __future__ import annotations

from webhooks.models.endpoints import (
    RESERVED_SLUGS,
    Endpoint,
    EndpointSecret,
    validate_not_reserved,
)
from webhooks.models.events import Attempt, Event
from webhooks.models.rejections import Rejection
from webhooks.models.tallies import Tally
from webhooks.models.tokens import ApiToken

__all__ = [
    "RESERVED_SLUGS",
    "ApiToken",
    "Attempt",
    "Endpoint",
    "EndpointSecret",
    "Event",
    "Rejection",
    "Tally",
    "validate_not_reserved",
]
