"""Helpers for testing your own handlers with signature verification on.

Each delivery is built and signed exactly as the named provider signs it (the
signing code of ``webhooks_send``), posted through the real ingest view with
Django's test client, and processed in the calling thread, inside the test's
transaction. They work the same under pytest (``@pytest.mark.django_db``) and
in Django's ``TestCase``::

    from webhooks import testing

    def test_payment_marks_the_order_paid(db):
        endpoint = testing.make_endpoint("stripe")
        delivered = testing.deliver(endpoint, payload={"id": "evt_1", ...})
        assert delivered.answer == {"status": "received", "id": delivered.event.pk}
        testing.run_handlers()
        testing.assert_event(delivered.event, "succeeded")

Handlers run only when :func:`run_handlers` is called: :func:`deliver` keeps
the inline runner out of it (set ``WEBHOOKS_PROCESSING = "worker"`` in your
test settings if other code of yours stores events too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Endpoint, Event
from webhooks.processing import batches, claims
from webhooks.providers import get_provider
from webhooks.sending import samples
from webhooks.sending.client import Outgoing
from webhooks.sending.signed import signed_delivery

__all__ = [
    "Delivered",
    "assert_event",
    "deliver",
    "make_endpoint",
    "post",
    "run_handlers",
    "sign",
]

#: Django's test client posts to this host (and it is always allowed in tests).
TEST_ORIGIN = "http://testserver"
#: The name claims are made under, as a worker's would be.
WORKER = "testing"
#: Events claimed at a time by run_handlers.
BATCH = 100


@dataclass(frozen=True)
class Delivered:
    """A delivery posted through the ingest view, and what it was answered."""

    request: Outgoing
    #: The test client's response (``status_code``, ``content``, headers).
    response: HttpResponse

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def answer(self) -> Any:
        """The JSON answer (``{"status": "received", "id": N}``, an error, ...)."""
        return json.loads(self.response.content)

    @property
    def event(self) -> Event:
        """The stored event the answer names; AssertionError when none was stored."""
        try:
            event_id = self.answer["id"]
        except (ValueError, KeyError, TypeError):
            raise AssertionError(
                f"The delivery stored no event: {self.status_code} "
                f"{self.response.content.decode(errors='replace')}"
            ) from None
        return Event.objects.get(pk=event_id)


def make_endpoint(
    provider: str,
    slug: str | None = None,
    *,
    secret: str | None = None,
    **fields: Any,
) -> Endpoint:
    """An active endpoint of ``provider`` with a new secret in the provider's form.

    For public-key providers (Discord, SendGrid) the generated secret is a
    private key: the endpoint verifies with its public half and :func:`deliver`
    signs with it. ``fields`` go to the model (``options``, ``tolerance_seconds``, ...).
    """
    provider_class = get_provider(provider, fields.get("options"))
    if secret is None and provider_class.needs_secret:
        secret = provider_class.generate_secret()
    with transaction.atomic():
        endpoint = Endpoint.objects.create(
            slug=slug or f"test-{provider}", provider=provider, **fields
        )
        if secret:
            endpoint.secrets.create(value=secret)
    return endpoint


def sign(
    endpoint: Endpoint,
    *,
    event_type: str | None = None,
    payload: Any = None,
    body: bytes | str | None = None,
    secret: str | None = None,
    url: str | None = None,
) -> Outgoing:
    """A delivery to ``endpoint``, signed as its provider signs, ready to post.

    Without ``payload`` or ``body`` it is a fresh copy of the provider's shipped
    sample of ``event_type`` (its first when None; ``webhooks_send --list-types``
    lists them). ``payload`` is encoded as the provider sends it (JSON, or a form
    for form providers such as Twilio); ``body`` is sent byte for byte. Both may
    hold the samples' placeholders (``{{id}}``, ``{{now}}``, ...). ``event_type``
    then fills the provider's type header where it has one (``X-GitHub-Event``).
    ``secret`` defaults to the endpoint's newest valid one; ``url`` to where the
    test client posts, which URL-signing providers (Twilio) sign.
    """
    if payload is not None and body is not None:
        raise TypeError("pass payload or body, not both")
    provider = endpoint.get_provider()
    if secret is None:
        valid = endpoint.valid_secrets()
        secret = valid[0] if valid else ""
    path = reverse("webhooks:receive", kwargs={"slug": endpoint.slug})
    data = encode(endpoint.provider, payload) if payload is not None else body
    if isinstance(data, str):
        data = data.encode()
    return signed_delivery(
        provider,
        secret,
        url=path,
        public_url=url or (conf.PUBLIC_URL or TEST_ORIGIN) + path,
        event_type=event_type,
        data=data,
    )


def encode(provider_id: str, payload: Any) -> bytes:
    """``payload`` in the provider's own format: a form for form providers, else JSON."""
    content_type = samples.manifest(samples.folder(provider_id))["content_type"]
    if content_type.split(";")[0].strip().lower() == samples.FORM:
        if not isinstance(payload, Mapping):
            raise TypeError(f"{provider_id} sends forms: pass payload as a dict")
        return urlencode(payload, doseq=True).encode()
    return json.dumps(payload).encode()


def deliver(
    endpoint: Endpoint | str,
    *,
    event_type: str | None = None,
    payload: Any = None,
    body: bytes | str | None = None,
    secret: str | None = None,
    headers: Mapping[str, str] | None = None,
    client: Client | None = None,
) -> Delivered:
    """Sign a delivery for ``endpoint`` (an Endpoint or its slug) and :func:`post` it."""
    if isinstance(endpoint, str):
        endpoint = Endpoint.objects.get(slug=endpoint)
    request = sign(
        endpoint, event_type=event_type, payload=payload, body=body, secret=secret
    )
    return post(request, headers=headers, client=client)


def post(
    request: Outgoing,
    *,
    headers: Mapping[str, str] | None = None,
    client: Client | None = None,
) -> Delivered:
    """Post a signed delivery through the ingest view, as the provider's request.

    It is verified, stored, deduplicated and answered as any delivery; posting
    the same ``request`` again is the provider retrying it (a duplicate).
    ``headers`` are added to or replace the signed ones (to test a forged
    delivery, say). The client enforces CSRF, as a provider has no token.
    Handlers do not run here: see :func:`run_handlers`.
    """
    sent = {**request.headers, **(headers or {})}
    content_type = next(
        (value for name, value in sent.items() if name.lower() == "content-type"),
        "application/octet-stream",
    )
    sent = {
        name: value for name, value in sent.items() if name.lower() != "content-type"
    }
    client = client or Client(enforce_csrf_checks=True)
    # The inline runner would otherwise pick the event up in a thread of its own
    # once a transactional test commits it, racing run_handlers.
    with override_settings(WEBHOOKS_PROCESSING="worker"):
        response = client.post(
            request.url, data=request.body, content_type=content_type, headers=sent
        )
    # The ingest view answers with plain HttpResponses (JSON), never a stream.
    return Delivered(request, cast(HttpResponse, response))


def run_handlers(*, retries: bool = False) -> list[Event]:
    """Run the handlers of every due event now, in this thread; the events, as they end.

    Each event runs as a worker would run it: status, attempts, errors and the
    ``event_status_changed`` signal included. An event whose handler raises is
    ``retrying`` afterwards; with ``retries=True`` its later attempts run at
    once too, without the backoff, until it succeeds or is ``failed`` after
    ``WEBHOOKS_MAX_ATTEMPTS``.
    """
    ran: dict[int, Event] = {}
    while True:
        if retries:
            Event.objects.filter(status=Event.Status.RETRYING).update(
                next_attempt_at=timezone.now()
            )
        claimed = claims.claim_events(BATCH, WORKER)
        if not claimed:
            break
        batches.run_batch(claimed)
        ran.update((event.pk, event) for event in claimed)
    events = Event.objects.filter(pk__in=list(ran)).order_by("pk")
    return list(events)


def assert_event(
    event: Event | int,
    status: str,
    *,
    error: str | None = None,
    attempts: int | None = None,
) -> Event:
    """Assert the stored event's ``status`` (and that ``error`` is in its last error).

    On a mismatch the message shows the event's status and last error, so a
    failing handler's traceback is in the test report. Returns the fresh event.
    """
    event = Event.objects.get(pk=event if isinstance(event, int) else event.pk)
    problems = []
    if event.status != status:
        problems.append(f"status is {event.status!r}, expected {status!r}")
    if error is not None and error not in event.last_error:
        problems.append(f"last error does not contain {error!r}")
    if attempts is not None and event.attempts != attempts:
        problems.append(f"attempts is {event.attempts}, expected {attempts}")
    if problems:
        detail = f"\nLast error:\n{event.last_error}" if event.last_error else ""
        raise AssertionError(
            f"Event {event.pk} ({event.provider} {event.event_type!r}): "
            + "; ".join(problems)
            + detail
        )
    return event
