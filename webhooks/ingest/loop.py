"""Ingest for the event loop: the common delivery verified and stored without a thread of its own.

:func:`ingest_async` gives the same answers as :func:`webhooks.ingest.store.ingest`:
it walks the same steps (:mod:`webhooks.ingest.steps`) in the event loop, which
does only CPU work there, and hands the event of a delivery they let through to
the group committer (:mod:`webhooks.ingest.committer`). When a step needs the
database (a slug this process does not keep, a signature to check against
fresh secrets, a refusal to record), the delivery is handed to
:func:`~webhooks.ingest.store.finish` in a thread, which goes on from that
step; those are rare, or throttled. So is a large body, verified and parsed
in the thread from the first step.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections

from webhooks.delivery import Answer, Delivery
from webhooks.ingest import answers
from webhooks.ingest.committer import Overloaded, committer
from webhooks.ingest.steps import Passage, walk
from webhooks.ingest.store import finish, verified_event
from webhooks.observability import tracing

logger = logging.getLogger("webhooks")

#: Larger bodies are verified and parsed in a thread: a few ms of HMAC or JSON
#: would hold up every request.
LOOP_BODY_BYTES = 256 * 1024


async def ingest_async(slug: str, delivery: Delivery) -> Answer:
    """Verify ``delivery`` for the endpoint ``slug``, store it, and say what to answer."""
    passage = Passage(slug, delivery, database=False)
    if len(delivery.body) > LOOP_BODY_BYTES:
        return await sync_to_async(finish_in_thread)(passage, 0)
    index, outcome = walk(passage)
    if isinstance(outcome, Answer):
        return outcome
    if outcome is not None:  # the database is needed: to decide, or to record a refusal
        return await sync_to_async(finish_in_thread)(passage, index)
    event, handshake = verified_event(passage)
    try:
        with tracing.span("webhooks.store", batched=True):
            event_id, created = await committer.store(event)
    except Overloaded:
        logger.warning("Delivery to %r refused: too many waiting for a commit", slug)
        return answers.unavailable()
    except DatabaseError:
        logger.warning(
            "Delivery to %r not stored: database unavailable", slug, exc_info=True
        )
        return answers.unavailable()
    if handshake is not None:
        return handshake
    return answers.stored(event_id, created)


def finish_in_thread(passage: Passage, start: int) -> Answer:
    # No request_started/finished signals on this path: the connection is
    # checked and released here, as Django does around a request.
    close_old_connections()
    try:
        return finish(passage, start)
    finally:
        close_old_connections()
