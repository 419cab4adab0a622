"""Reading events by id cursor without skipping any, under concurrent inserts.

Ids come from a sequence when the INSERT runs, but transactions commit in
their own order: ingest A takes id 10, ingest B takes id 11 and commits first.
A reader that returned 11 and moved its cursor past it would never see 10.

Only a reader-side rule is possible here (ingest marks nothing while it
inserts), so a page stops at the **horizon**: the highest id below which every
id is final. Walking up the ids, a row is final when

* the id just below it exists and is final (no gap, so nothing in between can
  still be in flight), or
* it was received more than ``WEBHOOKS_API_SETTLE_SECONDS`` ago. Its INSERT
  came after it was received, and a lower id was handed out before that
  INSERT; a delivery's row commits within the window of its arrival (ingest
  answers in milliseconds, a group commit included), so by then a gap below
  it is permanent: a rolled-back insert, a duplicate that used up a sequence
  value, a pruned event.

Contiguous ids therefore flow at once, and only a gap holds a reader back, for
at most the settle window. Only events newer than the window need checking,
which the index on ``received_at`` finds directly. The rule assumes that the
servers' clocks agree to well within the window (received_at is the receiving
server's clock) and that no insert stays uncommitted for longer than the
window after its delivery arrived; a database stalled for longer could let a
reader pass a gap early, so keep the window above the longest stall you
expect. SQLite serialises writers, so there it holds back nothing but real
gaps, for the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, Max, OuterRef, QuerySet, Subquery
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Event


@dataclass(frozen=True)
class Horizon:
    #: Every id up to here is final; None: every id that exists now.
    final_up_to: int
    #: When the first held-back row settles (a reader may look again then), or None.
    settles_at: datetime | None


def horizon() -> Horizon:
    """The highest id below which no event can still appear."""
    # The maximum is read first: a row committed after this read is beyond it,
    # whatever the next query sees.
    highest = Event.objects.aggregate(highest=Max("id"))["highest"] or 0
    window = timedelta(seconds=conf.API_SETTLE_SECONDS)
    # The first fresh row with a gap just below it, and the last row below that
    # gap, in one statement: one snapshot. (Read separately, a row of the gap
    # committing in between would be taken as the last final one while ids
    # below it are still in flight.) Id 1 has the start of the sequence below it.
    predecessor = Event.objects.filter(id=OuterRef("id") - 1)
    last_below = Event.objects.filter(id__lt=OuterRef("id")).order_by("-id")
    first_gap = (
        Event.objects.filter(
            received_at__gt=timezone.now() - window, id__lte=highest, id__gt=1
        )
        .filter(~Exists(predecessor))
        .annotate(below=Subquery(last_below.values("id")[:1]))
        .order_by("id")
        .values_list("received_at", "below")
        .first()
    )
    if first_gap is None:
        return Horizon(highest, None)
    received_at, below = first_gap
    return Horizon(below or 0, received_at + window)


@dataclass(frozen=True)
class Page:
    events: list[Event]
    next_after_id: int
    #: More final events match beyond this page.
    has_more: bool
    settles_at: datetime | None


def page(queryset: QuerySet[Event], after_id: int, limit: int) -> Page:
    """Up to ``limit`` events of ``queryset`` above ``after_id``, oldest first, all final."""
    edge = horizon()
    rows = list(
        queryset.filter(id__gt=after_id, id__lte=edge.final_up_to).order_by("id")[
            : limit + 1
        ]
    )
    events, has_more = rows[:limit], len(rows) > limit
    # Without more, every match up to the horizon was returned: the cursor may
    # move to the horizon, so a narrow filter does not rescan the same
    # non-matching rows on every call.
    next_after_id = events[-1].pk if has_more else max(after_id, edge.final_up_to)
    return Page(events, next_after_id, has_more, edge.settles_at)
