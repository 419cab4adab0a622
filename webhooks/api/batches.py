"""Walking large sets of events a batch of ids at a time, without holding them all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

#: Ids per batch: small enough for short transactions, large enough to stay quick.
BATCH_SIZE = 500


def id_batches(queryset: QuerySet[Any], size: int | None = None) -> Iterator[list[int]]:
    """Yield the primary keys of ``queryset`` in ascending batches of ``size`` at most.

    Each batch is a fresh keyset query (``pk > last``), so the caller may
    change or delete the rows of one batch before asking for the next, and no
    cursor stays open across its writes. Rows created after the walk starts are
    left out: a command run while traffic flows always ends.
    """
    ids = queryset.order_by("pk").values_list("pk", flat=True)
    ceiling = queryset.order_by("-pk").values_list("pk", flat=True).first()
    if ceiling is None:
        return
    size = size or BATCH_SIZE
    last: int | None = None
    while True:
        page = ids.filter(pk__lte=ceiling)
        if last is not None:
            page = page.filter(pk__gt=last)
        batch = list(page[:size])
        if not batch:
            return
        yield batch
        last = batch[-1]
