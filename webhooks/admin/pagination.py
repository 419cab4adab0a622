"""A paginator for tables too big to count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

# Generic only in django-stubs; django-stubs-ext is not a runtime dependency.
if TYPE_CHECKING:
    PaginatorBase = Paginator[Any]
else:
    PaginatorBase = Paginator


class CappedPaginator(PaginatorBase):
    """Counts at most ``cap`` + 1 rows, so a page costs the same with a million events.

    ``COUNT(*)`` over the whole table is a full scan on PostgreSQL; counting a
    sliced subquery stops after ``cap + 1`` rows. Pages past the cap are not
    reachable by number; filters (date, endpoint, status) narrow the list instead.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        # Only ever given the admin's querysets.
        queryset = cast("QuerySet[Any]", self.object_list)
        return queryset.values("pk")[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        """True when there are more rows than were counted; the list shows "cap+"."""
        return self.count > self.cap
