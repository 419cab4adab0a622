"""The ordered steps that answer or refuse a delivery, defined once for both front doors.

Each step looks at one :class:`Passage` and either lets it through (None),
answers it (an :class:`~webhooks.providers.delivery.Answer`: a refusal that records
nothing, or a misconfiguration), refuses it with a reason that is recorded as a
Rejection (:class:`Refused`), or says it cannot decide without the database
(:data:`ASK`). :func:`walk` runs :data:`STEPS` in order.

The thread path (:mod:`webhooks.ingest.store`) walks them with the database at
hand. The event loop (:mod:`webhooks.ingest.loop`) walks them without it, and
when a step asks for the database or a refusal must be recorded, hands the
passage to the thread path, which goes on from that same step: every step,
rate limits included, runs once per delivery, and an order change is one edit
here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from webhooks.conf import conf
from webhooks.exceptions import (
    InvalidSignature,
    ProviderConfigError,
    UnknownProviderError,
    VerifyTokenMismatch,
)
from webhooks.ingest import answers, keys
from webhooks.ingest import endpoints as lookup
from webhooks.ingest.ratelimit import buckets
from webhooks.models import Endpoint
from webhooks.observability import metrics, tallies, tracing
from webhooks.providers.base import Provider
from webhooks.providers.delivery import Answer, Delivery

logger = logging.getLogger("webhooks")


class AskDatabase:
    """A step's outcome: this step cannot decide without the database."""

    def __repr__(self) -> str:
        return "ASK"


ASK: Final = AskDatabase()


@dataclass(frozen=True)
class Refused:
    """A step's outcome: refuse with ``answer``, and record a Rejection for ``reason``."""

    reason: str
    answer: Answer


Outcome = Answer | Refused | AskDatabase | None


@dataclass
class Passage:
    """One delivery on its way through the steps, with what they have found so far."""

    slug: str
    delivery: Delivery
    #: Whether steps may query the database; False in the event loop, or while it is down.
    database: bool
    endpoint: Endpoint | None = None
    #: The endpoint came from the process's cache: a failed signature is checked
    #: once more against the secrets in the database before it is refused.
    kept: bool = False
    provider: Provider | None = None
    #: The provider's parse of the body, once a step or the store has asked for it.
    parsed: tuple[Any] | None = None

    @property
    def found(self) -> tuple[Endpoint, Provider]:
        """The endpoint and its provider, once the steps that find them have passed."""
        assert self.endpoint is not None and self.provider is not None
        return self.endpoint, self.provider

    def payload(self) -> Any:
        """The parsed body, parsed once however many steps ask."""
        if self.parsed is None:
            _, provider = self.found
            self.parsed = (provider.parse(self.delivery),)
        return self.parsed[0]


def source_limit(passage: Passage) -> Outcome:
    key = f"source:{passage.delivery.source_ip}"
    if not buckets.allow(key, conf.RATE_LIMIT_PER_SOURCE):
        return answers.rate_limited()
    return None


def endpoint_found(passage: Passage) -> Outcome:
    if passage.database:
        passage.endpoint, passage.kept = lookup.find(passage.slug)
    else:
        passage.endpoint, passage.kept = lookup.kept(passage.slug), True
        if passage.endpoint is None:
            return ASK  # not kept, kept as unknown, or kept too long
    if passage.endpoint is None:
        return answers.unknown_endpoint()
    return None


def provider_configured(passage: Passage) -> Outcome:
    assert passage.endpoint is not None
    try:
        passage.provider = passage.endpoint.get_provider(keys=keys.remote)
    except (UnknownProviderError, ProviderConfigError):
        # A misconfigured endpoint cannot verify anything; the provider should retry
        # once an operator fixes it (system check webhooks.E002 names it).
        logger.error("Endpoint %r is misconfigured", passage.slug, exc_info=True)
        return answers.unavailable()
    return None


def method_allowed(passage: Passage) -> Outcome:
    _, provider = passage.found
    method = passage.delivery.method
    if method != "POST" and method not in provider.extra_methods:
        return answers.method_not_allowed(provider.extra_methods)
    return None


def not_failing_repeatedly(passage: Passage) -> Outcome:
    # A source that keeps failing costs no more verification or writes.
    endpoint, _ = passage.found
    if buckets.exhausted(
        rejections_key(endpoint, passage.delivery), conf.REJECTION_LIMIT
    ):
        return answers.rate_limited()
    return None


def network_allowed(passage: Passage) -> Outcome:
    endpoint, _ = passage.found
    if not endpoint.allows(passage.delivery.source_ip):
        return Refused("ip_not_allowed", answers.forbidden())
    return None


def endpoint_limit(passage: Passage) -> Outcome:
    # After the cheap refusals and before the signature: a flood of forged
    # deliveries to one endpoint is throttled before it costs verification.
    endpoint, _ = passage.found
    if not buckets.allow(f"endpoint:{endpoint.pk}", conf.RATE_LIMIT_PER_ENDPOINT):
        return answers.rate_limited()
    return None


def signature_verified(passage: Passage) -> Outcome:
    endpoint, provider = passage.found
    with tracing.span("webhooks.verify", provider=provider.id) as current:
        failure = signature_failure(endpoint, provider, passage.delivery)
        if failure is not None:
            tracing.failed(current, failure.reason)
    if failure is not None and passage.kept:
        # Kept secrets may be stale (a rotation made in another process).
        if not passage.database:
            return ASK
        fresh, _ = lookup.find(endpoint.slug, fresh=True)
        if fresh is not None:
            failure = signature_failure(fresh, provider, passage.delivery)
            if failure is None:
                passage.endpoint = fresh  # its secrets answer a handshake
    if isinstance(failure, VerifyTokenMismatch):
        return Refused(
            "verify_token_mismatch", answers.forbidden("verify_token_mismatch")
        )
    if failure is not None:
        return Refused(failure.reason, answers.invalid_signature(failure.reason))
    return None


def event_type_allowed(passage: Passage) -> Outcome:
    """A verified delivery of a type outside the endpoint's allowlist is answered, not stored.

    Handshakes pass whatever the list says: the provider needs their answer.
    """
    endpoint, provider = passage.found
    if not endpoint.event_types:
        return None
    delivery = passage.delivery
    payload = passage.payload()
    event_type = (provider.event_type(delivery, payload) or "").replace("\x00", "")
    if endpoint.accepts_type(event_type[:255]):
        return None
    if provider.handshake(delivery, payload, endpoint.valid_secrets()) is not None:
        return None
    metrics.delivery_ignored(endpoint)
    tallies.count(endpoint.pk, "ignored")
    return answers.ignored()


def signature_failure(
    endpoint: Endpoint, provider: Provider, delivery: Delivery
) -> InvalidSignature | None:
    """The provider's verification of ``delivery``, as one call: its failure, or None."""
    try:
        provider.verify(
            delivery,
            endpoint.valid_secrets(),
            tolerance=endpoint.tolerance(provider),
            now=time.time(),
        )
    except InvalidSignature as error:
        return error
    return None


def rejections_key(endpoint: Endpoint, delivery: Delivery) -> str:
    return f"rejected:{endpoint.pk}:{delivery.source_ip}"


Step = Callable[[Passage], Outcome]

#: The order every delivery meets, whichever door it came in by. The doors
#: refuse a wrong method and an oversized body before these, as they read the
#: request.
STEPS: Final[tuple[Step, ...]] = (
    source_limit,
    endpoint_found,
    provider_configured,
    method_allowed,
    not_failing_repeatedly,
    network_allowed,
    endpoint_limit,
    signature_verified,
    event_type_allowed,
)


def walk(passage: Passage, start: int = 0) -> tuple[int, Outcome]:
    """Run the steps from ``start``: the first that does not let the delivery
    through, with its index, or ``(len(STEPS), None)`` when all do."""
    for index in range(start, len(STEPS)):
        outcome = STEPS[index](passage)
        if outcome is not None:
            return index, outcome
    return len(STEPS), None
