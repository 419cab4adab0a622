"""The generic HMAC provider: our own scheme (oracle: none; Python's hmac)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import SignedBodyContract
from webhooks.exceptions import ProviderConfigError
from webhooks.models import Event
from webhooks.providers import get_provider

SECRET = "generic-hmac-secret-4f2a9c"
OTHER_SECRET = "generic-hmac-secret-rotated-7b1d"
SLUG = "generic"
URL = f"/webhooks/{SLUG}/"


def mac(
    message: bytes,
    secret: str = SECRET,
    algorithm: str = "sha256",
    encoding: str = "hex",
) -> str:
    digest = hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def sample() -> bytes:
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": "invoice.created",
            "data": {"amount": 1250},
        }
    ).encode()


def post(client: Client, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(URL, body, content_type="application/json", headers=headers)


class TestGenericHmac(SignedBodyContract):
    provider = "hmac"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return sample()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {"X-Signature": mac(body, secret)}

    def malformed(self, headers):
        return {**headers, "X-Signature": "zz" + headers["X-Signature"][2:]}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "X-Signature"}

    def test_default_options_take_the_type_from_the_body_and_dedup_on_the_body_hash(
        self, provider_client: Client, endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        event = Event.objects.get()
        assert event.event_type == "invoice.created"
        assert event.delivery_id == "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.mark.django_db
@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_each_algorithm_and_encoding_is_accepted_and_others_rejected(
    provider_client: Client, algorithm: str, encoding: str
) -> None:
    make_endpoint(
        SLUG, "hmac", SECRET, options={"algorithm": algorithm, "encoding": encoding}
    )
    body = sample()
    good = post(
        provider_client,
        body,
        {"X-Signature": mac(body, algorithm=algorithm, encoding=encoding)},
    )
    assert good.status_code == 200, good.content
    other = "sha1" if algorithm != "sha1" else "sha256"
    wrong = post(
        provider_client,
        sample(),
        {"X-Signature": mac(body, algorithm=other, encoding=encoding)},
    )
    assert wrong.status_code == 401


@pytest.mark.django_db
def test_custom_header_and_prefix_are_honoured(provider_client: Client) -> None:
    make_endpoint(
        SLUG,
        "hmac",
        SECRET,
        options={"header": "X-Acme-Signature", "prefix": "sha256="},
    )
    body = sample()
    response = post(provider_client, body, {"X-Acme-Signature": "sha256=" + mac(body)})
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_signature_without_the_configured_prefix_is_malformed(
    provider_client: Client,
) -> None:
    make_endpoint(SLUG, "hmac", SECRET, options={"prefix": "sha256="})
    body = sample()
    response = post(provider_client, body, {"X-Signature": mac(body)})
    assert response.json() == {
        "error": "invalid_signature",
        "reason": "malformed_signature",
    }


@pytest.mark.django_db
def test_signature_in_the_default_header_is_missing_when_another_is_configured(
    provider_client: Client,
) -> None:
    make_endpoint(SLUG, "hmac", SECRET, options={"header": "X-Acme-Signature"})
    body = sample()
    response = post(provider_client, body, {"X-Signature": mac(body)})
    assert response.json()["reason"] == "missing_signature"


TIMESTAMPED = {"template": "{timestamp}.{body}", "timestamp_header": "X-Timestamp"}


@pytest.mark.django_db
def test_timestamp_template_signs_the_timestamp_header(provider_client: Client) -> None:
    make_endpoint(SLUG, "hmac", SECRET, options=TIMESTAMPED, tolerance_seconds=300)
    body = sample()
    timestamp = str(int(time.time()))
    headers = {
        "X-Timestamp": timestamp,
        "X-Signature": mac(timestamp.encode() + b"." + body),
    }
    assert post(provider_client, body, headers).status_code == 200
    # The same signature under another timestamp does not verify.
    moved = {**headers, "X-Timestamp": str(int(timestamp) + 1)}
    assert post(provider_client, body, moved).json()["reason"] == "signature_mismatch"


@pytest.mark.django_db
@pytest.mark.parametrize("skew", [-3600, 3600])
def test_timestamp_outside_the_tolerance_is_rejected(
    provider_client: Client, skew: int
) -> None:
    make_endpoint(SLUG, "hmac", SECRET, options=TIMESTAMPED, tolerance_seconds=300)
    body = sample()
    timestamp = str(int(time.time()) + skew)
    headers = {
        "X-Timestamp": timestamp,
        "X-Signature": mac(timestamp.encode() + b"." + body),
    }
    assert (
        post(provider_client, body, headers).json()["reason"]
        == "timestamp_out_of_tolerance"
    )


@pytest.mark.django_db
def test_timestamp_template_without_the_timestamp_header_is_missing_signature(
    provider_client: Client,
) -> None:
    make_endpoint(SLUG, "hmac", SECRET, options=TIMESTAMPED)
    body = sample()
    response = post(provider_client, body, {"X-Signature": mac(b"." + body)})
    assert response.json()["reason"] == "missing_signature"


@pytest.mark.django_db
def test_id_header_is_the_dedup_key_and_type_header_the_event_type(
    provider_client: Client,
) -> None:
    make_endpoint(
        SLUG,
        "hmac",
        SECRET,
        options={"id_header": "X-Delivery-Id", "type_header": "X-Event"},
    )
    body = sample()
    headers = {
        "X-Signature": mac(body),
        "X-Delivery-Id": "dlv-42",
        "X-Event": "invoice.paid",
    }
    first = post(provider_client, body, headers)
    event = Event.objects.get()
    assert (event.delivery_id, event.event_type) == ("dlv-42", "invoice.paid")
    other_body = sample()
    second = post(
        provider_client, other_body, {**headers, "X-Signature": mac(other_body)}
    )
    assert second.json() == {"status": "duplicate", "id": first.json()["id"]}


@pytest.mark.django_db
def test_type_field_and_id_field_are_dotted_paths_into_the_body(
    provider_client: Client,
) -> None:
    make_endpoint(
        SLUG,
        "hmac",
        SECRET,
        options={"id_field": "meta.delivery", "type_field": "meta.kind"},
    )
    body = json.dumps({"meta": {"delivery": "d-7", "kind": "user.deleted"}}).encode()
    post(provider_client, body, {"X-Signature": mac(body)})
    event = Event.objects.get()
    assert (event.delivery_id, event.event_type) == ("d-7", "user.deleted")


@pytest.mark.django_db
def test_id_placeholder_signs_the_id_header(provider_client: Client) -> None:
    make_endpoint(
        SLUG,
        "hmac",
        SECRET,
        options={"template": "{id}.{body}", "id_header": "X-Delivery-Id"},
    )
    body = sample()
    headers = {"X-Delivery-Id": "dlv-9", "X-Signature": mac(b"dlv-9." + body)}
    assert post(provider_client, body, headers).status_code == 200
    replayed = {**headers, "X-Delivery-Id": "dlv-10"}
    assert (
        post(provider_client, body, replayed).json()["reason"] == "signature_mismatch"
    )


@pytest.mark.django_db
def test_id_placeholder_signs_the_id_field_of_the_body(provider_client: Client) -> None:
    make_endpoint(
        SLUG, "hmac", SECRET, options={"template": "{id}.{body}", "id_field": "id"}
    )
    body = sample()
    delivery_id = json.loads(body)["id"]
    headers = {"X-Signature": mac(delivery_id.encode() + b"." + body)}
    response = post(provider_client, body, headers)
    assert response.status_code == 200, response.content
    assert Event.objects.get().delivery_id == delivery_id


@pytest.mark.django_db
def test_url_placeholder_signs_the_public_url(provider_client: Client) -> None:
    make_endpoint(SLUG, "hmac", SECRET, options={"template": "{url}{body}"})
    body = sample()
    headers = {"X-Signature": mac(b"http://testserver" + URL.encode() + body)}
    assert post(provider_client, body, headers).status_code == 200


@pytest.mark.parametrize(
    "options",
    [
        {"algorithm": "md5"},
        {"encoding": "base32"},
        {"template": "{timestamp}"},
        {"template": "{timestamp}.{body}"},
        {"colour": "blue"},
    ],
    ids=[
        "algorithm",
        "encoding",
        "template-without-body",
        "timestamp-without-header",
        "unknown",
    ],
)
def test_invalid_options_raise_provider_config_error(options: dict[str, str]) -> None:
    with pytest.raises(ProviderConfigError):
        get_provider("hmac", options)


@pytest.mark.django_db
def test_delivery_to_a_misconfigured_endpoint_answers_503_and_stores_nothing(
    provider_client: Client,
) -> None:
    make_endpoint(SLUG, "hmac", SECRET, options={"algorithm": "md5"})
    body = sample()
    response = post(provider_client, body, {"X-Signature": mac(body)})
    assert response.status_code == 503
    assert response.json() == {"error": "unavailable"}
    assert "Retry-After" in response
    assert Event.objects.count() == 0


def test_template_values_are_not_substituted_twice() -> None:
    import time

    from webhooks.providers import get_provider
    from webhooks.providers.delivery import Delivery

    provider = get_provider("hmac", {"id_header": "X-Id", "template": "{id}.{body}"})
    delivery = Delivery(
        "POST", {"x-id": "{url}"}, b"{}", None, "https://x/", time.time()
    )
    message, _ = provider._message(delivery)
    assert message == b"{url}.{}"
