"""Query parameters of the events API, checked into plain values or a clear error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import QuerySet

from webhooks.models import Event

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_ID = 2**63 - 1


class BadParameter(ValueError):
    pass


def integer(value: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadParameter(f"{name} must be an integer") from None
    if not low <= number <= high:
        raise BadParameter(f"{name} must be between {low} and {high}")
    return number


@dataclass(frozen=True)
class Filters:
    endpoint: str = ""
    provider: str = ""
    status: str = ""
    event_type: str = ""

    def apply(self, queryset: QuerySet[Event]) -> QuerySet[Event]:
        if self.endpoint:
            queryset = queryset.filter(endpoint__slug=self.endpoint)
        if self.provider:
            queryset = queryset.filter(provider=self.provider)
        if self.status:
            queryset = queryset.filter(status=self.status)
        if self.event_type:
            queryset = queryset.filter(event_type=self.event_type)
        return queryset


def filters(query: Mapping[str, str], *, allow_status: bool = True) -> Filters:
    status = query.get("status", "")
    if status and not allow_status:
        raise BadParameter("status cannot filter a stream (it changes after delivery)")
    if status and status not in Event.Status.values:
        raise BadParameter(f"status must be one of {', '.join(Event.Status.values)}")
    return Filters(
        endpoint=query.get("endpoint", ""),
        provider=query.get("provider", ""),
        status=status,
        event_type=query.get("type", ""),
    )
