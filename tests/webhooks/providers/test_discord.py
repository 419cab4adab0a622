"""Discord. Discord publishes no vector; its verifier checks what these tests
sign (oracle: discord-interactions 0.4.0, verify_key).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from discord_interactions import verify_key
from django.test import Client
from nacl.signing import SigningKey

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import SignedBodyContract
from tests.webhooks.providers.live_send import send_and_check
from webhooks.exceptions import ProviderConfigError
from webhooks.models import Endpoint, Event
from webhooks.providers.discord import DiscordProvider, load_key

KEY, OTHER_KEY = SigningKey.generate(), SigningKey.generate()
#: Public key (hex, as the Developer Portal shows it) to its signing key.
SIGNERS = {key.verify_key.encode().hex(): key for key in (KEY, OTHER_KEY)}


def interaction(kind: int = 2) -> dict:
    return {
        "application_id": "1176204963516768276",
        "id": str(uuid.uuid4().int % 10**18),
        "token": "aW50ZXJhY3Rpb246" + uuid.uuid4().hex,
        "type": kind,
        "version": 1,
        "data": {"id": "1176211457129545831", "name": "deploy", "type": 1},
        "channel_id": "1099516247936970763",
    }


class TestDiscord(SignedBodyContract):
    provider = "discord"
    secret = KEY.verify_key.encode().hex()
    other_secret = OTHER_KEY.verify_key.encode().hex()

    def sample(self) -> bytes:
        return json.dumps(interaction()).encode()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        timestamp = int(time.time()) if timestamp is None else timestamp
        signed = SIGNERS[secret].sign(str(timestamp).encode() + body)
        return {
            "X-Signature-Ed25519": signed.signature.hex(),
            "X-Signature-Timestamp": str(timestamp),
            "User-Agent": "Discord-Interactions/1.0 (+https://discord.com)",
        }

    def malformed(self, headers):
        return {**headers, "X-Signature-Ed25519": "zz" * 64}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "X-Signature-Ed25519"}

    # -- the official verifier ---------------------------------------------------------

    def test_discord_interactions_verifies_what_the_tests_sign(self) -> None:
        # oracle: discord-interactions 0.4.0 (verify_key)
        body = self.sample()
        headers = self.sign(body, self.secret)
        assert verify_key(
            body,
            headers["X-Signature-Ed25519"],
            headers["X-Signature-Timestamp"],
            self.secret,
        )
        assert not verify_key(
            body + b" ",
            headers["X-Signature-Ed25519"],
            headers["X-Signature-Timestamp"],
            self.secret,
        )

    def test_provider_sign_with_a_signing_key_verifies_with_discord_interactions(
        self,
    ) -> None:
        # oracle: discord-interactions 0.4.0 (verify_key)
        secret = DiscordProvider.generate_secret()
        body = self.sample()
        signed = DiscordProvider().sign(
            body,
            secret,
            url="https://hooks.example.com/",
            delivery_id="",
            timestamp=1700000000,
            content_type="application/json",
        )
        public = SigningKey(bytes.fromhex(secret)[:32]).verify_key.encode().hex()
        assert secret.endswith(public)  # libsodium's layout: seed, then public key
        assert verify_key(
            body, signed.headers["X-Signature-Ed25519"], "1700000000", public
        )

    def test_sign_with_only_the_public_key_says_it_needs_the_signing_key(
        self,
    ) -> None:
        with pytest.raises(ValueError, match="private key"):
            DiscordProvider().sign(
                b"{}",
                self.secret,
                url="https://hooks.example.com/",
                delivery_id="",
                timestamp=1,
                content_type="application/json",
            )

    @pytest.mark.parametrize("secret", ["not hex", "ab" * 31, "ab" * 33])
    def test_secret_that_is_no_ed25519_key_is_a_config_error(self, secret) -> None:
        with pytest.raises(ProviderConfigError):
            load_key(secret)

    # -- handshakes and Discord's checks -------------------------------------------------

    def test_ping_is_answered_with_pong_and_recorded_skipped(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = json.dumps(interaction(kind=1)).encode()
        response = self.deliver(provider_client, body, self.sign(body, self.secret))
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "application/json"
        assert json.loads(response.content) == {"type": 1}
        event = Event.objects.get()
        assert event.status == Event.Status.SKIPPED
        assert event.event_type == "PING"

    def test_ping_with_a_forged_signature_gets_401_and_no_pong(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # Discord sends such probes on purpose and drops endpoints that accept them.
        body = json.dumps(interaction(kind=1)).encode()
        headers = self.sign(body, self.secret)
        forged = bytes.fromhex(headers["X-Signature-Ed25519"])
        forged = bytes([forged[0] ^ 1]) + forged[1:]
        headers["X-Signature-Ed25519"] = forged.hex()
        response = self.deliver(provider_client, body, headers)
        self.assert_rejected(response, "signature_mismatch")
        assert b'"type": 1' not in response.content

    def test_webhook_events_ping_is_answered_204_without_a_body(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = json.dumps(
            {"version": 1, "application_id": "1176204963516768276", "type": 0}
        ).encode()
        response = self.deliver(provider_client, body, self.sign(body, self.secret))
        assert response.status_code == 204
        assert response.content == b""
        assert Event.objects.get().status == Event.Status.SKIPPED

    def test_webhook_event_is_stored_with_its_event_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = json.dumps(
            {
                "version": 1,
                "application_id": "1176204963516768276",
                "type": 1,
                "event": {
                    "type": "ENTITLEMENT_CREATE",
                    "timestamp": "2026-11-22T10:00:00.000000+00:00",
                    "data": {"id": uuid.uuid4().hex},
                },
            }
        ).encode()
        response = self.deliver(provider_client, body, self.sign(body, self.secret))
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert event.event_type == "ENTITLEMENT_CREATE"
        assert event.status == Event.Status.PENDING
        assert event.delivery_id.startswith("sha256:")

    def test_interaction_is_identified_by_its_id_and_typed_by_its_kind(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, self.secret))
        event = Event.objects.get()
        assert event.delivery_id == json.loads(body)["id"]
        assert event.event_type == "APPLICATION_COMMAND"

    def test_signature_of_the_wrong_length_is_malformed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = {**self.sign(body, self.secret), "X-Signature-Ed25519": "ab" * 32}
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "malformed_signature"
        )

    def test_missing_timestamp_is_missing_signature(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, self.secret)
        del headers["X-Signature-Timestamp"]
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "missing_signature"
        )

    def test_stale_timestamp_is_rejected_when_the_endpoint_sets_a_tolerance(
        self, provider_client: Client
    ) -> None:
        make_endpoint("contract", "discord", self.secret, tolerance_seconds=300)
        body = self.sample()
        headers = self.sign(body, self.secret, timestamp=int(time.time()) - 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("APPLICATION_COMMAND", Event.Status.PENDING),
        ("APPLICATION_AUTHORIZED", Event.Status.PENDING),
        ("PING", Event.Status.SKIPPED),
    ],
)
def test_webhooks_send_delivers_a_sample_discord_interactions_verifies(
    live_server, event_type, status
) -> None:
    # oracle: discord-interactions 0.4.0 (verify_key)
    secret = DiscordProvider.generate_secret()
    make_endpoint("send-discord", "discord", secret)
    event = send_and_check(live_server.url, "send-discord", event_type)
    assert event.event_type == event_type
    assert event.status == status
    assert verify_key(
        bytes(event.body),
        event.headers["x-signature-ed25519"],
        event.headers["x-signature-timestamp"],
        secret[64:],
    )
