"""Every provider's sign() is checked by its own verify(), by the provider's SDK
where one exists, and against the documented algorithm and official vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest
import standardwebhooks.webhooks
import stripe
import svix.webhooks
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator

from webhooks.exceptions import InvalidSignature
from webhooks.providers import get_provider
from webhooks.providers.base import Provider, Signed
from webhooks.providers.basic import BasicAuthProvider
from webhooks.providers.delivery import Delivery
from webhooks.providers.github import GitHubProvider
from webhooks.providers.hmac import HmacProvider
from webhooks.providers.none import UnsignedProvider
from webhooks.providers.shopify import ShopifyProvider
from webhooks.providers.slack import SlackProvider
from webhooks.providers.standard import StandardWebhooksProvider
from webhooks.providers.stripe import StripeProvider
from webhooks.providers.twilio import TwilioProvider

URL = "https://hooks.example.com/webhooks/demo/"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BODY = b'{"id":"evt_1","type":"order.paid","note":"caf\xc3\xa9"}'
FORM_BODY = b"MessageSid=SM123&Body=Hello+there&From=%2B14155550199&SmsStatus=received"
DELIVERY_ID = "msg_2mJ8yQ0Z3NjcXbqR6wLpTsVh"

PROVIDERS = [
    StripeProvider,
    GitHubProvider,
    ShopifyProvider,
    SlackProvider,
    TwilioProvider,
    StandardWebhooksProvider,
    HmacProvider,
    BasicAuthProvider,
    UnsignedProvider,
]


def sign(
    provider: Provider,
    body: bytes,
    secret: str,
    *,
    content_type: str = JSON,
    url: str = URL,
    timestamp: int | None = None,
) -> Signed:
    return provider.sign(
        body,
        secret,
        url=url,
        delivery_id=DELIVERY_ID,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        content_type=content_type,
    )


def delivery(signed: Signed, body: bytes, content_type: str = JSON) -> Delivery:
    return Delivery(
        method="POST",
        headers={
            "content-type": content_type,
            **{name.lower(): value for name, value in signed.headers.items()},
        },
        body=body,
        source_ip="127.0.0.1",
        url=signed.url,
        received_at=time.time(),
    )


def verify(provider: Provider, signed: Signed, body: bytes, secret: str, **kw) -> None:
    content_type = kw.pop("content_type", JSON)
    provider.verify(
        delivery(signed, body, content_type),
        [secret],
        tolerance=provider.default_tolerance,
        now=kw.pop("now", time.time()),
    )


# -- round trip through our own verify() -------------------------------------------


@pytest.mark.parametrize("cls", PROVIDERS, ids=lambda cls: cls.id)
@pytest.mark.parametrize("content_type", [JSON, FORM])
def test_sign_output_is_accepted_by_verify(cls, content_type) -> None:
    provider = cls()
    secret = cls.generate_secret()
    body = BODY if content_type == JSON else FORM_BODY
    signed = sign(provider, body, secret, content_type=content_type)
    verify(provider, signed, body, secret, content_type=content_type)


@pytest.mark.parametrize(
    "cls", [cls for cls in PROVIDERS if cls.needs_secret], ids=lambda cls: cls.id
)
def test_sign_with_another_secret_is_rejected_by_verify(cls) -> None:
    provider = cls()
    signed = sign(provider, BODY, cls.generate_secret())
    with pytest.raises(InvalidSignature):
        verify(provider, signed, BODY, cls.generate_secret())


@pytest.mark.parametrize(
    "cls",
    [cls for cls in PROVIDERS if cls not in (BasicAuthProvider, UnsignedProvider)],
    ids=lambda cls: cls.id,
)
def test_sign_covers_the_body(cls) -> None:
    provider, secret = cls(), cls.generate_secret()
    signed = sign(provider, BODY, secret)
    with pytest.raises(InvalidSignature):
        verify(provider, signed, BODY.replace(b"evt_1", b"evt_2"), secret)


def test_sign_of_the_base_provider_says_which_provider_cannot_sign() -> None:
    class QuietProvider(Provider):
        id = "quiet"
        name = "Quiet"

    with pytest.raises(NotImplementedError, match="'quiet' cannot sign"):
        sign(QuietProvider(), BODY, "secret")


def test_sign_of_unsigned_provider_sends_no_headers() -> None:
    assert sign(UnsignedProvider(), BODY, "") == Signed({}, URL)


# -- the providers' own SDKs -------------------------------------------------------


def test_stripe_sign_is_accepted_by_the_stripe_sdk() -> None:
    secret = StripeProvider.generate_secret()
    signed = sign(StripeProvider(), BODY, secret)
    assert stripe.WebhookSignature.verify_header(
        BODY.decode(), signed.headers["Stripe-Signature"], secret, tolerance=300
    )


def test_stripe_sign_equals_the_sdk_test_header() -> None:
    secret, timestamp = StripeProvider.generate_secret(), 1718000000
    signed = sign(StripeProvider(), BODY, secret, timestamp=timestamp)
    expected = stripe.WebhookSignature.generate_signature_header(
        BODY.decode(), secret, timestamp=timestamp
    )
    assert signed.headers["Stripe-Signature"] == expected


def test_slack_sign_is_accepted_by_slack_sdk() -> None:
    secret = SlackProvider.generate_secret()
    signed = sign(SlackProvider(), BODY, secret)
    verifier = SignatureVerifier(secret)
    assert verifier.is_valid(
        BODY,
        signed.headers["X-Slack-Request-Timestamp"],
        signed.headers["X-Slack-Signature"],
    )
    assert verifier.is_valid_request(BODY, signed.headers)


def test_slack_sign_reproduces_the_official_vector() -> None:
    # api.slack.com "Verifying requests from Slack", and slack_sdk's own tests.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com"
        b"%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    signed = sign(
        SlackProvider(),
        body,
        "8f742231b10e8888abcd99yyyzzz85a5",
        content_type=FORM,
        timestamp=1531420618,
    )
    assert signed.headers["X-Slack-Signature"] == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_twilio_form_sign_is_accepted_by_twilio_sdk() -> None:
    secret = TwilioProvider.generate_secret()
    signed = sign(TwilioProvider(), FORM_BODY, secret, content_type=FORM)
    assert signed.url == URL
    params = dict(parse_qsl(FORM_BODY.decode()))
    assert RequestValidator(secret).validate(
        URL, params, signed.headers["X-Twilio-Signature"]
    )


def test_twilio_json_sign_puts_body_sha256_in_the_url_accepted_by_twilio_sdk() -> None:
    secret = TwilioProvider.generate_secret()
    signed = sign(TwilioProvider(), BODY, secret)
    assert signed.url == f"{URL}?bodySHA256={hashlib.sha256(BODY).hexdigest()}"
    assert RequestValidator(secret).validate(
        signed.url, BODY.decode(), signed.headers["X-Twilio-Signature"]
    )


def test_twilio_sign_reproduces_the_official_vectors() -> None:
    # twilio/twilio-python tests/unit/test_request_validator.py
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    form = b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309"
    signed = sign(TwilioProvider(), form, "12345", content_type=FORM, url=url)
    assert signed.headers["X-Twilio-Signature"] == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    body = b'{"property": "value", "boolean": true}'
    signed = sign(TwilioProvider(), body, "12345", url=url)
    assert signed.url == (
        url
        + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    )
    assert signed.headers["X-Twilio-Signature"] == "a9nBmqA0ju/hNViExpshrM61xv4="


def test_standard_sign_is_accepted_by_standardwebhooks_and_svix() -> None:
    secret = StandardWebhooksProvider.generate_secret()
    signed = sign(StandardWebhooksProvider(), BODY, secret)
    assert standardwebhooks.webhooks.Webhook(secret).verify(BODY, signed.headers)
    svix_headers = {
        name.replace("webhook-", "svix-"): value
        for name, value in signed.headers.items()
    }
    # svix's verify() returns None and raises WebhookVerificationError when invalid.
    svix.webhooks.Webhook(secret).verify(BODY, svix_headers)
    svix.webhooks.Webhook(secret).verify(BODY, signed.headers)
    with pytest.raises(svix.webhooks.WebhookVerificationError):
        svix.webhooks.Webhook(secret).verify(BODY + b" ", svix_headers)


def test_standard_sign_reproduces_the_official_vector() -> None:
    # test_sign_function in every standard-webhooks library.
    provider = StandardWebhooksProvider()
    signed = provider.sign(
        b'{"test": 2432232314}',
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        url=URL,
        delivery_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        content_type=JSON,
    )
    assert signed.headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    library = standardwebhooks.webhooks.Webhook(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    )
    assert signed.headers["webhook-signature"] == library.sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        '{"test": 2432232314}',
    )


def test_standard_sign_with_a_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        sign(StandardWebhooksProvider(), BODY, "whsec_not base64!")


# -- GitHub and Shopify: documented algorithm and official vector -------------------


def test_github_sign_reproduces_the_official_vector() -> None:
    # docs.github.com "Validating webhook deliveries".
    signed = sign(GitHubProvider(), b"Hello, World!", "It's a Secret to Everybody")
    assert signed.headers["X-Hub-Signature-256"] == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_github_sign_sends_both_documented_headers() -> None:
    secret = "gh-secret"
    signed = sign(GitHubProvider(), BODY, secret)
    assert signed.headers == {
        "X-Hub-Signature": "sha1="
        + hmac.new(secret.encode(), BODY, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest(),
    }


def test_shopify_sign_is_the_documented_base64_hmac_sha256_of_the_body() -> None:
    secret = "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"
    signed = sign(ShopifyProvider(), BODY, secret)
    mac = hmac.new(secret.encode(), BODY, hashlib.sha256).digest()
    assert signed.headers == {"X-Shopify-Hmac-Sha256": base64.b64encode(mac).decode()}


# -- the configurable providers honour the endpoint's options -----------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"header": "X-Hook-Signature", "prefix": "sha512=", "algorithm": "sha512"},
        {"encoding": "base64", "algorithm": "sha1"},
        {
            "template": "{timestamp}.{id}.{body}.{url}",
            "timestamp_header": "X-Hook-Timestamp",
            "id_header": "X-Hook-Id",
        },
        {"template": "{id}:{body}", "id_field": "id"},
    ],
    ids=[
        "default",
        "header-prefix-sha512",
        "base64-sha1",
        "timestamp-id-url",
        "id-field",
    ],
)
def test_hmac_sign_honours_the_endpoint_options(options) -> None:
    provider = get_provider("hmac", options)
    signed = sign(provider, BODY, "hmac-secret")
    verify(provider, signed, BODY, "hmac-secret")
    assert options.get("header", "X-Signature") in signed.headers


def test_hmac_sign_puts_timestamp_and_id_in_their_configured_headers() -> None:
    provider = get_provider(
        "hmac",
        {
            "timestamp_header": "X-Ts",
            "id_header": "X-Id",
            "template": "{timestamp}{body}",
        },
    )
    signed = sign(provider, BODY, "k", timestamp=1700000000)
    assert signed.headers["X-Ts"] == "1700000000"
    assert signed.headers["X-Id"] == DELIVERY_ID
    expected = hmac.new(b"k", b"1700000000" + BODY, hashlib.sha256).hexdigest()
    assert signed.headers["X-Signature"] == expected


def test_basic_sign_sends_the_user_password_secret_as_basic_credentials() -> None:
    signed = sign(BasicAuthProvider(), BODY, "webhooks:pa:ss")
    assert signed.headers == {
        "Authorization": "Basic " + base64.b64encode(b"webhooks:pa:ss").decode()
    }


def test_sign_headers_are_plain_strings_for_http() -> None:
    for cls in PROVIDERS:
        signed = sign(cls(), BODY, cls.generate_secret())
        json.dumps(signed.headers)
        assert all(value.isascii() for value in signed.headers.values())
