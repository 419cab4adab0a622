"""Twilio. The contract signs with Twilio's SDK (oracle: twilio SDK 9.13.0,
RequestValidator); the published examples of its tests are checked too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.test import Client, override_settings
from twilio.request_validator import RequestValidator, get_signature_algorithm

from tests.webhooks.payloads.loader import payload
from tests.webhooks.providers.contract import SignedBodyContract
from webhooks.exceptions import InvalidSignature
from webhooks.models import Endpoint, Event
from webhooks.providers.delivery import Delivery
from webhooks.providers.twilio import TwilioProvider, signed_string, url_variants

FORM = "application/x-www-form-urlencoded"
TEST_ORIGIN = "http://testserver"
SECRET = "3a1f9c2b7e6d5c4b3a29181706f5e4d3"
OTHER_SECRET = "9d8c7b6a5f4e3d2c1b0a99887766554a"
SAMPLE_SID = b"SM00000000000000000000000000000000"

# twilio/twilio-python tests/unit/test_request_validator.py
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
VECTOR_JSON_BODY = b'{"property": "value", "boolean": true}'
VECTOR_BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
VECTOR_JSON_SIGNATURE = "a9nBmqA0ju/hNViExpshrM61xv4="
VECTOR_DUPLICATE_PARAMS = [
    ("Sid", "CA123"),
    ("SidAccount", "AC123"),
    ("Digits", "5678"),
    ("Digits", "1234"),
]
VECTOR_DUPLICATE_SIGNATURE = "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def twilio_signature(
    url: str, body: bytes, secret: str, content_type: str, algorithm: str | None = None
) -> str:
    """What Twilio sends: the SDK's signature over the URL plus, for forms, the fields."""
    params = QueryDict(body.decode()) if content_type == FORM else {}
    return RequestValidator(secret).compute_signature(url, params, algorithm)


def delivery(
    url: str, body: bytes, content_type: str, headers: dict[str, str]
) -> Delivery:
    return Delivery(
        method="POST",
        headers={
            "content-type": content_type,
            **{k.lower(): v for k, v in headers.items()},
        },
        body=body,
        source_ip="127.0.0.1",
        url=url,
        received_at=time.time(),
    )


def hmac_b64(token: str, message: bytes, digest: str = "sha1") -> str:
    return base64.b64encode(hmac.new(token.encode(), message, digest).digest()).decode()


class TestTwilio(SignedBodyContract):
    provider = "twilio"
    secret = SECRET
    other_secret = OTHER_SECRET
    content_type = FORM

    def sample(self) -> bytes:
        sid = ("SM" + uuid.uuid4().hex).encode()
        return payload("twilio", "incoming_sms.txt").replace(SAMPLE_SID, sid)

    def path(self, body: bytes, content_type: str) -> str:
        path = super().path(body, content_type)
        if content_type != FORM:
            path += "?" + urlencode({"bodySHA256": hashlib.sha256(body).hexdigest()})
        return path

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        content_type = content_type or self.content_type
        url = TEST_ORIGIN + self.path(body, content_type)
        return {
            "X-Twilio-Signature": twilio_signature(url, body, secret, content_type),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }

    def malformed(self, headers):
        return {**headers, "X-Twilio-Signature": "not*base64"}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "X-Twilio-Signature"}

    def post(
        self,
        client: Client,
        url_path: str,
        body: bytes,
        headers: dict[str, str],
        content_type: str = FORM,
        **extra,
    ):
        return client.post(
            url_path, body, content_type=content_type, headers=headers, **extra
        )

    # -- official vectors ------------------------------------------------------------

    def test_official_form_vector_through_signed_string(self) -> None:
        # oracle: published example in twilio-python's tests and twilio SDK 9.13.0
        body = urlencode(VECTOR_PARAMS).encode()
        bare = url_variants(VECTOR_URL)[0]
        assert bare == VECTOR_URL
        message = signed_string(bare, delivery(VECTOR_URL, body, FORM, {}))
        assert hmac_b64(VECTOR_TOKEN, message) == VECTOR_SIGNATURE
        assert (
            RequestValidator(VECTOR_TOKEN).compute_signature(VECTOR_URL, VECTOR_PARAMS)
            == VECTOR_SIGNATURE
        )

    def test_official_form_vector_verifies(self) -> None:
        # oracle: published example in twilio-python's tests (test_request_validator.py)
        body = urlencode(VECTOR_PARAMS).encode()
        TwilioProvider().verify(
            delivery(VECTOR_URL, body, FORM, {"X-Twilio-Signature": VECTOR_SIGNATURE}),
            [VECTOR_TOKEN],
            tolerance=None,
            now=time.time(),
        )

    def test_official_duplicate_params_vector_verifies(self) -> None:
        # oracle: published example in twilio-python's tests (test_request_validator.py)
        body = urlencode(VECTOR_DUPLICATE_PARAMS).encode()
        message = signed_string(VECTOR_URL, delivery(VECTOR_URL, body, FORM, {}))
        assert (
            message
            == (VECTOR_URL + "Digits1234Digits5678SidCA123SidAccountAC123").encode()
        )
        assert hmac_b64(VECTOR_TOKEN, message) == VECTOR_DUPLICATE_SIGNATURE
        TwilioProvider().verify(
            delivery(
                VECTOR_URL,
                body,
                FORM,
                {"X-Twilio-Signature": VECTOR_DUPLICATE_SIGNATURE},
            ),
            [VECTOR_TOKEN],
            tolerance=None,
            now=time.time(),
        )

    def test_official_json_vector_verifies(self) -> None:
        # oracle: published example in twilio-python's tests (test_request_validator.py)
        assert hashlib.sha256(VECTOR_JSON_BODY).hexdigest() == VECTOR_BODY_HASH
        url = f"{VECTOR_URL}&bodySHA256={VECTOR_BODY_HASH}"
        json_delivery = delivery(
            url,
            VECTOR_JSON_BODY,
            "application/json",
            {"X-Twilio-Signature": VECTOR_JSON_SIGNATURE},
        )
        assert signed_string(url, json_delivery) == url.encode()
        assert hmac_b64(VECTOR_TOKEN, url.encode()) == VECTOR_JSON_SIGNATURE
        TwilioProvider().verify(
            json_delivery, [VECTOR_TOKEN], tolerance=None, now=time.time()
        )

    def test_official_json_vector_with_another_body_is_a_mismatch(self) -> None:
        # oracle: published example in twilio-python's tests (test_request_validator.py)
        url = f"{VECTOR_URL}&bodySHA256={VECTOR_BODY_HASH}"
        body = b'{"property": "value", "boolean": false}'
        with pytest.raises(InvalidSignature) as error:
            TwilioProvider().verify(
                delivery(
                    url,
                    body,
                    "application/json",
                    {"X-Twilio-Signature": VECTOR_JSON_SIGNATURE},
                ),
                [VECTOR_TOKEN],
                tolerance=None,
                now=time.time(),
            )
        assert error.value.reason == "signature_mismatch"

    # -- URL reconstruction ----------------------------------------------------------

    def test_json_body_without_body_hash_in_the_url_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = b'{"MessageSid": "SM' + uuid.uuid4().hex.encode() + b'"}'
        url_path = "/webhooks/contract/"
        headers = {
            "X-Twilio-Signature": twilio_signature(
                TEST_ORIGIN + url_path, body, SECRET, "application/json"
            )
        }
        response = self.post(
            provider_client, url_path, body, headers, "application/json"
        )
        self.assert_rejected(response, "signature_mismatch")

    def test_json_body_with_a_valid_body_hash_is_stored(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = (
            b'{"MessageSid": "SM'
            + uuid.uuid4().hex.encode()
            + b'", "MessageStatus": "delivered"}'
        )
        headers = self.sign(body, SECRET, content_type="application/json")
        response = self.deliver(provider_client, body, headers, "application/json")
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert event.payload["MessageStatus"] == "delivered"
        assert event.event_type == "message.delivered"

    @override_settings(WEBHOOKS_PUBLIC_URL="https://hooks.example.com")
    def test_public_url_setting_is_the_signed_origin(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            "https://hooks.example.com/webhooks/contract/", body, SECRET, FORM
        )
        response = self.post(
            provider_client,
            "/webhooks/contract/",
            body,
            {"X-Twilio-Signature": signature},
        )
        assert response.status_code == 200, response.content

    @override_settings(WEBHOOKS_PUBLIC_URL="https://hooks.example.com")
    def test_signature_over_the_internal_url_fails_behind_a_public_url(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            TEST_ORIGIN + "/webhooks/contract/", body, SECRET, FORM
        )
        response = self.post(
            provider_client,
            "/webhooks/contract/",
            body,
            {"X-Twilio-Signature": signature},
        )
        self.assert_rejected(response, "signature_mismatch")

    @override_settings(WEBHOOKS_PUBLIC_URL="https://hooks.example.com")
    def test_signature_with_explicit_443_port_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            "https://hooks.example.com:443/webhooks/contract/", body, SECRET, FORM
        )
        response = self.post(
            provider_client,
            "/webhooks/contract/",
            body,
            {"X-Twilio-Signature": signature},
        )
        assert response.status_code == 200, response.content

    @override_settings(WEBHOOKS_PUBLIC_URL="https://hooks.example.com:443")
    def test_signature_without_port_is_accepted_when_the_public_url_names_443(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            "https://hooks.example.com/webhooks/contract/", body, SECRET, FORM
        )
        response = self.post(
            provider_client,
            "/webhooks/contract/",
            body,
            {"X-Twilio-Signature": signature},
        )
        assert response.status_code == 200, response.content

    @override_settings(WEBHOOKS_PUBLIC_URL="https://hooks.example.com:1234")
    def test_signature_without_a_non_default_port_is_accepted_as_the_sdk_accepts_it(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # oracle: twilio SDK 9.13.0 (RequestValidator.validate removes any port)
        body = self.sample()
        signed_url = "https://hooks.example.com/webhooks/contract/"
        signature = twilio_signature(signed_url, body, SECRET, FORM)
        params = QueryDict(body.decode())
        assert RequestValidator(SECRET).validate(
            "https://hooks.example.com:1234/webhooks/contract/", params, signature
        )
        response = self.post(
            provider_client,
            "/webhooks/contract/",
            body,
            {"X-Twilio-Signature": signature},
        )
        assert response.status_code == 200, response.content

    def test_url_variants_are_without_any_port_and_with_the_given_or_default_one(
        self,
    ) -> None:
        assert url_variants("https://hooks.example.com/a?b=1") == [
            "https://hooks.example.com/a?b=1",
            "https://hooks.example.com:443/a?b=1",
        ]
        assert url_variants("http://hooks.example.com:80/a") == [
            "http://hooks.example.com/a",
            "http://hooks.example.com:80/a",
        ]
        assert url_variants("https://hooks.example.com:8443/a") == [
            "https://hooks.example.com/a",
            "https://hooks.example.com:8443/a",
        ]
        # A signature over 443 does not cover another port.
        assert "https://hooks.example.com:443/a" not in url_variants(
            "https://hooks.example.com:8443/a"
        )

    @override_settings(WEBHOOKS_TRUSTED_PROXIES=["127.0.0.1/32"])
    def test_forwarded_url_from_a_trusted_proxy_verifies(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            "https://hooks.example.com/webhooks/contract/", body, SECRET, FORM
        )
        headers = {
            "X-Twilio-Signature": signature,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "hooks.example.com",
            "X-Forwarded-For": "54.172.60.1",
        }
        response = self.post(provider_client, "/webhooks/contract/", body, headers)
        assert response.status_code == 200, response.content
        assert Event.objects.get().source_ip == "54.172.60.1"

    def test_forwarded_headers_without_a_trusted_proxy_are_ignored(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            "https://hooks.example.com/webhooks/contract/", body, SECRET, FORM
        )
        headers = {
            "X-Twilio-Signature": signature,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "hooks.example.com",
        }
        response = self.post(provider_client, "/webhooks/contract/", body, headers)
        self.assert_rejected(response, "signature_mismatch")

    @override_settings(WEBHOOKS_TRUSTED_PROXIES=["10.0.0.0/8"])
    def test_forwarded_headers_from_an_untrusted_address_are_ignored(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            "https://hooks.example.com/webhooks/contract/", body, SECRET, FORM
        )
        headers = {
            "X-Twilio-Signature": signature,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "hooks.example.com",
        }
        response = self.post(provider_client, "/webhooks/contract/", body, headers)
        self.assert_rejected(response, "signature_mismatch")

    def test_query_string_is_part_of_the_signed_url(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            TEST_ORIGIN + "/webhooks/contract/?tenant=a", body, SECRET, FORM
        )
        ok = self.post(
            provider_client,
            "/webhooks/contract/?tenant=a",
            body,
            {"X-Twilio-Signature": signature},
        )
        assert ok.status_code == 200, ok.content
        moved = self.post(
            provider_client,
            "/webhooks/contract/?tenant=b",
            body,
            {"X-Twilio-Signature": signature},
        )
        assert moved.status_code == 401

    # -- SHA-256 SharedKey variant ----------------------------------------------------

    def test_sha256_variant_named_in_the_settings_header_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # oracle: twilio SDK 9.13.0 (RequestValidator, get_signature_algorithm)
        body = self.sample()
        settings_header = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
        algorithm = get_signature_algorithm(settings_header)
        url = TEST_ORIGIN + "/webhooks/contract/"
        signature = twilio_signature(url, body, SECRET, FORM, algorithm)
        assert len(base64.b64decode(signature)) == 32
        assert RequestValidator(SECRET).validate(
            url, QueryDict(body.decode()), signature, algorithm
        )
        headers = {
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": settings_header,
        }
        response = self.post(provider_client, "/webhooks/contract/", body, headers)
        assert response.status_code == 200, response.content

    def test_sha256_signature_without_the_settings_header_is_a_mismatch(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            TEST_ORIGIN + "/webhooks/contract/", body, SECRET, FORM, "HMAC_SHA256"
        )
        response = self.post(
            provider_client,
            "/webhooks/contract/",
            body,
            {"X-Twilio-Signature": signature},
        )
        self.assert_rejected(response, "signature_mismatch")

    def test_sha1_signature_under_a_sha256_settings_header_is_a_mismatch(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            TEST_ORIGIN + "/webhooks/contract/", body, SECRET, FORM
        )
        headers = {
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
        }
        self.assert_rejected(
            self.post(provider_client, "/webhooks/contract/", body, headers),
            "signature_mismatch",
        )

    @pytest.mark.parametrize(
        "settings_header",
        ["key=webhooks_sharedkey_1,algorithm=HMAC_SHA1", "key=webhooks_sharedkey_1"],
    )
    def test_settings_header_naming_sha1_or_no_algorithm_means_sha1_as_in_the_sdk(
        self, provider_client: Client, endpoint: Endpoint, settings_header: str
    ) -> None:
        # oracle: twilio SDK 9.13.0 (get_signature_algorithm)
        body = self.sample()
        algorithm = get_signature_algorithm(settings_header)
        assert algorithm == "HMAC_SHA1"
        signature = twilio_signature(
            TEST_ORIGIN + "/webhooks/contract/", body, SECRET, FORM, algorithm
        )
        headers = {
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": settings_header,
        }
        response = self.post(provider_client, "/webhooks/contract/", body, headers)
        assert response.status_code == 200, response.content

    def test_unknown_algorithm_in_the_settings_header_is_malformed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        signature = twilio_signature(
            TEST_ORIGIN + "/webhooks/contract/", body, SECRET, FORM
        )
        headers = {
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_MD5",
        }
        self.assert_rejected(
            self.post(provider_client, "/webhooks/contract/", body, headers),
            "malformed_signature",
        )

    # -- storage ---------------------------------------------------------------------

    def test_idempotency_token_is_the_dedup_key_and_sms_status_the_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert event.delivery_id == headers["I-Twilio-Idempotency-Token"]
        assert event.event_type == "message.received"
        assert event.payload["Body"] == "Hello from the receiver test"
        assert event.payload["MessageSid"].startswith("SM")

    def test_retry_with_the_same_idempotency_token_is_a_duplicate(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        first = self.deliver(provider_client, body, headers)
        second = self.deliver(
            provider_client, body, {**headers, "User-Agent": "TwilioProxy/1.1 retry"}
        )
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}

    def test_field_order_in_the_body_does_not_matter(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        reordered = "&".join(reversed(body.decode().split("&"))).encode()
        assert reordered != body
        response = self.deliver(provider_client, reordered, headers)
        assert response.status_code == 200, response.content


def test_url_variants_keep_the_host_as_written() -> None:
    from webhooks.providers.twilio import url_variants

    assert url_variants("https://Hooks.Example.com/webhooks/t/?a=1") == [
        "https://Hooks.Example.com/webhooks/t/?a=1",
        "https://Hooks.Example.com:443/webhooks/t/?a=1",
    ]
    assert url_variants("http://[::1]:80/x") == ["http://[::1]/x", "http://[::1]:80/x"]
    assert url_variants("https://h:8443/x") == ["https://h/x", "https://h:8443/x"]
    assert url_variants("https://user:pw@h:8443/x") == [
        "https://user:pw@h/x",
        "https://user:pw@h:8443/x",
    ]
    assert url_variants("https://h:99999/x") == ["https://h:99999/x"]


#: One path and query, reached with every scheme and port form.
URL_FORMS = [
    "https://example.com/hook?x=1",
    "https://example.com:443/hook?x=1",
    "https://example.com:1234/hook?x=1",
    "https://example.com:8443/hook?x=1",
    "http://example.com/hook?x=1",
    "http://example.com:80/hook?x=1",
    "http://example.com:1234/hook?x=1",
    "https://Example.com/hook?x=1",
]


@pytest.mark.parametrize("received", URL_FORMS)
@pytest.mark.parametrize("signed", URL_FORMS)
def test_each_url_form_is_accepted_exactly_when_the_sdk_accepts_it(
    signed: str, received: str
) -> None:
    # oracle: twilio SDK 9.13.0 (RequestValidator.compute_signature and .validate)
    params = {"From": "+14158675309", "Body": "port test", "MessageSid": "SM1"}
    body = urlencode(params).encode()
    signature = RequestValidator(SECRET).compute_signature(signed, params)
    sdk_accepts = RequestValidator(SECRET).validate(received, params, signature)
    verifying = delivery(received, body, FORM, {"X-Twilio-Signature": signature})
    try:
        TwilioProvider().verify(verifying, [SECRET], tolerance=None, now=time.time())
    except InvalidSignature:
        accepted = False
    else:
        accepted = True
    assert accepted is sdk_accepts


def test_the_sdk_oracle_accepts_and_refuses_some_url_forms() -> None:
    # The comparison above would hold for a validator that refused everything.
    params = {"Body": "x"}
    validator = RequestValidator(SECRET)
    signature = validator.compute_signature("https://example.com/hook?x=1", params)
    assert validator.validate("https://example.com:1234/hook?x=1", params, signature)
    assert not validator.validate("http://example.com/hook?x=1", params, signature)
