from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from urllib.parse import urlencode

import pytest
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import SignedBodyContract
from tests.webhooks.providers.live_send import send_and_check
from webhooks.models import Endpoint, Event, Rejection

APP_SECRET = "5e8c1f0d9a7b4c3e2f1a0b9c8d7e6f5a"
OTHER_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VERIFY_TOKEN = "meatyhamhock"

# The contract's signatures are made as Meta documents them (oracle: none published
# by Meta; our reading of the docs); a delivery Meta signed is checked at the end.


def meta_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def whatsapp_message(text: str = "Is my order on its way?") -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": "106540352242922"},
                            "messages": [
                                {
                                    "from": "16505551234",
                                    "id": "wamid." + uuid.uuid4().hex,
                                    "timestamp": "1749416383",
                                    "text": {"body": text},
                                    "type": "text",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


class TestMeta(SignedBodyContract):
    provider = "meta"
    secret = APP_SECRET
    other_secret = OTHER_SECRET

    @pytest.fixture
    def endpoint(self) -> Endpoint:
        return make_endpoint(
            "contract", "meta", APP_SECRET, options={"verify_token": VERIFY_TOKEN}
        )

    def sample(self) -> bytes:
        # As Meta sends it: non-ASCII escaped as \uXXXX.
        return json.dumps(whatsapp_message("Café ouvert ?")).encode()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {
            "X-Hub-Signature-256": meta_signature(secret, body),
            "User-Agent": "facebookexternalua",
        }

    def malformed(self, headers):
        return {**headers, "X-Hub-Signature-256": "sha1=" + "0" * 40}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}

    def subscribe(self, client: Client, **params: str):
        query = {
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
            **params,
        }
        return client.get(f"/webhooks/contract/?{urlencode(query)}")

    # -- the GET verification ------------------------------------------------------------

    def test_subscription_get_with_the_verify_token_answers_the_challenge(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        response = self.subscribe(provider_client)
        assert response.status_code == 200, response.content
        assert response.content == b"1158201444"
        assert response["Content-Type"] == "text/plain"
        event = Event.objects.get()
        assert event.status == Event.Status.SKIPPED
        assert event.event_type == "hub.verification"

    def test_subscription_get_with_a_wrong_token_is_refused_without_challenge(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        response = self.subscribe(provider_client, **{"hub.verify_token": "guess"})
        # Meta expects 403 for a token that does not match.
        assert response.status_code == 403
        assert response.json() == {
            "error": "forbidden",
            "reason": "verify_token_mismatch",
        }
        assert b"1158201444" not in response.content
        assert Rejection.objects.get().reason == "verify_token_mismatch"

    def test_subscription_get_without_a_token_is_missing_signature(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        response = provider_client.get(
            "/webhooks/contract/?hub.mode=subscribe&hub.challenge=1158201444"
        )
        self.assert_rejected(response, "missing_signature")

    def test_subscription_get_with_another_mode_is_malformed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        response = self.subscribe(provider_client, **{"hub.mode": "unsubscribe"})
        self.assert_rejected(response, "malformed_signature")

    def test_subscription_get_is_refused_when_no_verify_token_is_configured(
        self, provider_client: Client
    ) -> None:
        make_endpoint("contract", "meta", APP_SECRET)
        response = self.subscribe(provider_client, **{"hub.verify_token": ""})
        self.assert_rejected(response, "missing_signature")
        response = self.subscribe(provider_client, **{"hub.verify_token": "x"})
        assert response.status_code == 403

    def test_repeated_subscription_gets_are_each_answered(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        for challenge in ("111", "222", "111"):
            response = self.subscribe(provider_client, **{"hub.challenge": challenge})
            assert response.content == challenge.encode()

    def test_put_is_not_allowed_and_names_get(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        response = provider_client.put("/webhooks/contract/", b"{}")
        assert response.status_code == 405
        assert Event.objects.count() == 0

    # -- provider-specific -----------------------------------------------------------

    def test_non_ascii_is_verified_on_the_raw_escaped_bytes(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        assert b"\\u00e9" in body
        headers = self.sign(body, APP_SECRET)
        reencoded = json.dumps(json.loads(body), ensure_ascii=False).encode()
        self.assert_rejected(
            self.deliver(provider_client, reencoded, headers), "signature_mismatch"
        )
        assert self.deliver(provider_client, body, headers).status_code == 200

    def test_whatsapp_message_is_typed_by_field_and_identified_by_message_id(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, APP_SECRET))
        event = Event.objects.get()
        message = json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]
        assert event.event_type == "whatsapp_business_account.messages"
        assert event.delivery_id == message["id"]

    def test_batch_is_identified_by_all_its_message_and_status_ids(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        batch = whatsapp_message()
        value = batch["entry"][0]["changes"][0]["value"]
        value["statuses"] = [{"id": "wamid.status1", "status": "read"}]
        body = json.dumps(batch).encode()
        self.deliver(provider_client, body, self.sign(body, APP_SECRET))
        event = Event.objects.get()
        assert event.delivery_id == value["messages"][0]["id"] + ",wamid.status1"

    def test_messenger_message_is_typed_page_messaging(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = json.dumps(
            {
                "object": "page",
                "entry": [
                    {
                        "id": "109876543210987",
                        "time": 1749416383000,
                        "messaging": [
                            {
                                "sender": {"id": "6543210987654321"},
                                "message": {"mid": "m_" + uuid.uuid4().hex},
                            }
                        ],
                    }
                ],
            }
        ).encode()
        self.deliver(provider_client, body, self.sign(body, APP_SECRET))
        event = Event.objects.get()
        assert event.event_type == "page.messaging"
        assert event.delivery_id.startswith("m_")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("event_type", "stored_type"),
    [
        ("whatsapp.message", "whatsapp_business_account.messages"),
        ("whatsapp.status", "whatsapp_business_account.messages"),
        ("messenger.message", "page.messaging"),
    ],
)
def test_webhooks_send_delivers_a_sample_signed_with_the_app_secret(
    live_server, event_type, stored_type
) -> None:
    make_endpoint("send-meta", "meta", APP_SECRET)
    event = send_and_check(live_server.url, "send-meta", event_type)
    assert event.event_type == stored_type
    assert event.headers["x-hub-signature-256"] == meta_signature(
        APP_SECRET, bytes(event.body)
    )


# oracle: published example in a third-party library's tests (david-lev/pywa,
# tests/test_server.py, test_webhook_updates_validator): a WhatsApp Cloud API
# delivery as Meta signed it, with the App Secret (since reset) it was signed with.
# Meta publishes no vector and ships no Python verifier.
PUBLISHED_SECRET = "1222e786b144d0e85b9f365372d93676"
PUBLISHED_BODY = (
    b'{"object":"whatsapp_business_account","entry":[{"id":"264937493375603",'
    b'"changes":[{"value":{"messaging_product":"whatsapp","metadata":'
    b'{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},'
    b'"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],'
    b'"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RF'
    b'QTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":'
    b'{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}'
)
PUBLISHED_SIGNATURE = (
    "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441"
)


@pytest.mark.django_db
def test_published_delivery_is_stored_with_its_message_id_and_type(
    provider_client,
) -> None:
    make_endpoint("published", "meta", PUBLISHED_SECRET)
    response = provider_client.post(
        "/webhooks/published/",
        PUBLISHED_BODY,
        content_type="application/json",
        headers={"X-Hub-Signature-256": PUBLISHED_SIGNATURE},
    )
    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert event.event_type == "whatsapp_business_account.messages"
    assert event.delivery_id == (
        "wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("what", "body", "secret"),
    [
        ("another secret", PUBLISHED_BODY, APP_SECRET),
        ("a changed body", PUBLISHED_BODY.replace(b"Hey", b"hey"), PUBLISHED_SECRET),
    ],
)
def test_published_signature_with_anything_changed_is_a_mismatch(
    provider_client, what, body, secret
) -> None:
    make_endpoint("published", "meta", secret)
    response = provider_client.post(
        "/webhooks/published/",
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": PUBLISHED_SIGNATURE},
    )
    assert response.status_code == 401, what
    assert response.json()["reason"] == "signature_mismatch"
