"""The cursor under real concurrent inserts on PostgreSQL: every id exactly once.

Ids come from a sequence at INSERT time while transactions commit in their own
order; these tests hold transactions open so that higher ids commit first.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from webhooks.api import cursor
from webhooks.models import Event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def read_all(after_id: int) -> tuple[list[int], int]:
    page = cursor.page(Event.objects.all(), after_id, 500)
    return [event.pk for event in page.events], page.next_after_id


def settled_event(endpoint) -> Event:
    # Ids of earlier tests' rows are gone (the sequence is not reset): an old
    # first row marks everything below it as settled.
    return make_event(
        endpoint, "settled", received_at=timezone.now() - timedelta(minutes=10)
    )


def in_thread(target) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@override_settings(WEBHOOKS_API_SETTLE_SECONDS=300)
def test_a_higher_id_committed_first_waits_for_the_lower_one() -> None:
    endpoint = make_endpoint()
    start = settled_event(endpoint).pk
    inserted, release = threading.Event(), threading.Event()
    held: list[int] = []

    def slow_insert() -> None:
        with transaction.atomic():
            held.append(make_event(endpoint, "slow").pk)
            inserted.set()
            release.wait(30)

    thread = in_thread(slow_insert)
    assert inserted.wait(30)
    fast = make_event(endpoint, "fast").pk
    try:
        assert held[0] < fast
        # A plain "id > cursor" read sees the fast row now and would skip the slow one.
        assert list(
            Event.objects.filter(id__gt=start).values_list("id", flat=True)
        ) == [fast]
        before, cursor_before = read_all(start)
    finally:
        release.set()
        thread.join()
    after, _ = read_all(cursor_before)

    assert before == []
    assert cursor_before == start
    assert after == [held[0], fast]


@override_settings(WEBHOOKS_API_SETTLE_SECONDS=300)
def test_of_two_inserts_in_flight_the_higher_committing_first_is_held_back() -> None:
    endpoint = make_endpoint()
    start = settled_event(endpoint).pk
    inserted = [threading.Event(), threading.Event()]
    release = [threading.Event(), threading.Event()]
    held: list[int] = [0, 0]

    def slow_insert(number: int) -> None:
        with transaction.atomic():
            held[number] = make_event(endpoint, f"slow-{number}").pk
            inserted[number].set()
            release[number].wait(30)

    lower = in_thread(lambda: slow_insert(0))
    assert inserted[0].wait(30)
    higher = in_thread(lambda: slow_insert(1))
    assert inserted[1].wait(30)
    fast = make_event(endpoint, "fast").pk
    try:
        release[1].set()
        higher.join()
        # Committed: the higher slow row and the fast one; the lower is in flight.
        before, cursor_before = read_all(start)
    finally:
        release[0].set()
        lower.join()
    after, _ = read_all(cursor_before)

    assert held[0] < held[1] < fast
    assert (before, cursor_before) == ([], start)
    assert after == [held[0], held[1], fast]


@override_settings(WEBHOOKS_API_SETTLE_SECONDS=300)
def test_concurrent_inserts_are_each_read_exactly_once() -> None:
    endpoint = make_endpoint()
    writers, per_writer = 8, 50
    written: list[int] = []
    lock = threading.Lock()
    rng = random.Random(9)
    delays = [[rng.uniform(0, 0.02) for _ in range(per_writer)] for _ in range(writers)]

    def writer(number: int) -> None:
        for n, delay in enumerate(delays[number]):
            with transaction.atomic():
                event = make_event(endpoint, f"w{number}-{n}")
                # Held open after the INSERT: later ids commit meanwhile.
                threading.Event().wait(delay)
            with lock:
                written.append(event.pk)

    after_id = settled_event(endpoint).pk
    threads = [in_thread(lambda n=n: writer(n)) for n in range(writers)]
    seen: list[int] = []
    while any(thread.is_alive() for thread in threads):
        ids, after_id = read_all(after_id)
        seen += ids
    for thread in threads:
        thread.join()
    ids, after_id = read_all(after_id)
    seen += ids

    assert len(written) == writers * per_writer
    assert Counter(seen) == Counter(written)
