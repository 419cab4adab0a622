"""The contract every provider's tests inherit: security and storage guarantees for free.

Every test runs through both front doors (``provider_client`` is parametrized,
see :mod:`tests.webhooks.providers.doors`): the Django view, and the lean ASGI
door with the endpoint warmed, where production deliveries arrive.

A provider's test class sets ``provider``, ``secret`` and ``other_secret`` and
implements ``sign()`` (the real signature, made as the provider makes it) and
``sample()``. It inherits :class:`SignedBodyContract` when the signature covers
the body and :class:`TimestampedContract` when a signed timestamp must be fresh
(then ``sign()`` honours ``timestamp``). A scheme that carries its signature in
the body overrides ``signed()``, ``unsigned()`` and ``garbled()`` instead.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from django.test import Client

from tests.factories import expire_secret, make_endpoint
from tests.webhooks.providers.doors import AsgiClient
from webhooks.ingest.committer import committer
from webhooks.models import Endpoint, Event, Rejection

SLUG = "contract"


@pytest.mark.django_db
class ProviderContract:
    provider: ClassVar[str]
    secret: ClassVar[str]
    other_secret: ClassVar[str]
    content_type: ClassVar[str] = "application/json"

    # -- what each provider's test class supplies -------------------------------------

    def sample(self) -> bytes:
        """A realistic body; every call gives a new delivery (fresh ids)."""
        raise NotImplementedError

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        timestamp: int | None = None,
        content_type: str = "",
    ) -> dict[str, str]:
        """The headers the provider sends with ``body`` signed by ``secret``."""
        raise NotImplementedError

    def malformed(self, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` with the signature made unparseable."""
        raise NotImplementedError

    def without_signature(self, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` without the signature."""
        raise NotImplementedError

    def path(self, body: bytes, content_type: str) -> str:
        return f"/webhooks/{SLUG}/"

    # Providers that carry the signature inside the body (Mailgun) override these
    # three instead, since signing changes the body itself.

    def signed(
        self, secret: str, *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A fresh delivery signed with ``secret``: its body and headers."""
        body = self.sample()
        return body, self.sign(body, secret, timestamp=timestamp)

    def unsigned(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        """The delivery without its signature."""
        return body, self.without_signature(headers)

    def garbled(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        """The delivery with its signature made unparseable."""
        return body, self.malformed(headers)

    # -- helpers ------------------------------------------------------------------------

    @pytest.fixture(
        params=[
            "view",
            # The ASGI door's group committer writes from a thread of its own, so
            # its rows must be committed for real.
            pytest.param("asgi", marks=pytest.mark.django_db(transaction=True)),
        ]
    )
    def provider_client(self, request: pytest.FixtureRequest) -> Any:
        """The front door: Django's view (test client) or the ASGI application."""
        if request.param == "view":
            # Enforcing CSRF, as a provider's server would (it has no token).
            return Client(enforce_csrf_checks=True)
        request.getfixturevalue("async_db_connections")
        return AsgiClient()

    @pytest.fixture
    def endpoint(self) -> Endpoint:
        return make_endpoint(SLUG, self.provider, self.secret)

    def deliver(
        self,
        client: Client,
        body: bytes,
        headers: dict[str, str],
        content_type: str | None = None,
    ) -> Any:
        content_type = content_type or self.content_type
        return client.post(
            self.path(body, content_type),
            body,
            content_type=content_type,
            headers=headers,
        )

    def assert_rejected(self, response: Any, reason: str) -> None:
        assert response.status_code == 401, response.content
        assert response.json() == {"error": "invalid_signature", "reason": reason}
        assert Event.objects.count() == 0

    # -- the contract -----------------------------------------------------------------

    def test_valid_delivery_returns_200_and_stores_the_body_byte_exact(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(self.secret)
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert response.json() == {"status": "received", "id": event.pk}
        assert bytes(event.body) == body
        assert event.provider == self.provider
        assert event.status == Event.Status.PENDING
        assert event.payload is not None

    def test_same_delivery_twice_is_duplicate_with_one_row(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(self.secret)
        first = self.deliver(provider_client, body, headers)
        second = self.deliver(provider_client, body, headers)
        assert first.status_code == second.status_code == 200
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
        assert Event.objects.count() == 1

    def test_wrong_secret_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(self.other_secret)
        response = self.deliver(provider_client, body, headers)
        self.assert_rejected(response, "signature_mismatch")

    def test_missing_signature_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.unsigned(*self.signed(self.secret))
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "missing_signature"
        )

    def test_malformed_signature_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.garbled(*self.signed(self.secret))
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "malformed_signature"
        )

    def test_old_secret_is_accepted_within_its_grace_period(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        endpoint.rotate_secret(self.other_secret, timedelta(hours=1))
        body, headers = self.signed(self.secret)
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content
        new_body, new_headers = self.signed(self.other_secret)
        response = self.deliver(provider_client, new_body, new_headers)
        assert response.status_code == 200, response.content

    def test_old_secret_is_rejected_after_its_grace_period(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        endpoint.rotate_secret(self.other_secret, timedelta(hours=1))
        expire_secret(endpoint, self.secret, ago=timedelta(seconds=1))
        body, headers = self.signed(self.secret)
        response = self.deliver(provider_client, body, headers)
        self.assert_rejected(response, "signature_mismatch")

    def test_rejection_is_counted_and_kept(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(self.other_secret)
        self.deliver(provider_client, body, headers)
        endpoint.refresh_from_db()
        assert endpoint.rejected_count == 1
        rejection = Rejection.objects.get()
        assert rejection.reason == "signature_mismatch"
        assert bytes(rejection.body_head) == body[:4096]

    def test_non_utf8_non_json_body_with_valid_signature_is_stored_byte_exact(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = b"\xff\xfe not json \x00 " + uuid.uuid4().bytes
        content_type = "application/octet-stream"
        headers = self.sign(body, self.secret, content_type=content_type)
        response = self.deliver(provider_client, body, headers, content_type)
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert bytes(event.body) == body
        assert event.payload is None

    @pytest.mark.django_db(transaction=True)
    def test_valid_delivery_to_a_warmed_endpoint_takes_the_event_loop_path(
        self, endpoint: Endpoint
    ) -> None:
        # The lean door stores the common delivery by group commit, verified in the
        # event loop; a refusal or anything unusual would have taken a thread.
        # (PayPal's first delivery fetches its certificate in a thread; the second
        # is the common case.)
        client = AsgiClient()
        for _ in range(2):
            before = committer.stats["events"]
            body, headers = self.signed(self.secret)
            response = self.deliver(client, body, headers)
            assert response.status_code == 200, response.content
        assert committer.stats["events"] == before + 1
        assert Event.objects.count() == 2


class SignedBodyContract(ProviderContract):
    """For providers whose signature covers the body (all but HTTP Basic)."""

    def test_tampered_body_is_rejected_and_stores_nothing(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(self.secret)
        tampered = body.replace(b"e", b"E", 1)
        assert tampered != body
        self.assert_rejected(
            self.deliver(provider_client, tampered, headers), "signature_mismatch"
        )


class TimestampedContract(SignedBodyContract):
    """For providers that sign a timestamp and refuse stale ones."""

    def test_stale_timestamp_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(self.secret, timestamp=int(time.time()) - 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )
