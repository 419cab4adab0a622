"""The samples shipped with the app render to fresh deliveries that each provider
parses, identifies and types as intended."""

from __future__ import annotations

import json
import re
import time

import pytest

from webhooks.providers import builtin_ids, get_provider
from webhooks.providers.delivery import Delivery
from webhooks.sending import samples

#: The providers that read the generic samples: where the id and type are is per endpoint.
GENERIC = {"hmac", "basic", "none"}

#: Every sample of every built-in provider: provider, type, the event type the provider
#: reads from it (the manifest's read_as). A new provider's samples are tested here
#: without being listed.
EXPECTED = [
    (provider, event_type, samples.read_as(provider, event_type))
    for provider in builtin_ids()
    for event_type in samples.types(provider)
]

#: Where each provider's delivery id comes from in a rendered sample.
ID_IN_BODY = {"stripe": ("id",), "slack": ("event_id",)}


def as_delivery(sample: samples.Sample) -> Delivery:
    return Delivery(
        method="POST",
        headers={name.lower(): value for name, value in sample.headers.items()},
        body=sample.body,
        source_ip="127.0.0.1",
        url="http://127.0.0.1:8000/webhooks/demo/",
        received_at=time.time(),
    )


def test_every_builtin_provider_but_the_generic_ones_has_samples_of_its_own() -> None:
    for provider in set(builtin_ids()) - GENERIC:
        assert samples.folder(provider) == provider
        assert samples.types(provider)
    for provider in GENERIC:
        assert samples.folder(provider) == samples.GENERIC


@pytest.mark.parametrize(("provider_id", "event_type", "expected_type"), EXPECTED)
def test_sample_renders_to_a_body_the_provider_parses_and_types(
    provider_id, event_type, expected_type
) -> None:
    provider = get_provider(provider_id)
    sample = samples.render(provider_id, event_type, now=time.time())
    delivery = as_delivery(sample)
    payload = provider.parse(delivery)
    assert payload is not None
    assert b"{{" not in sample.body and "{{" not in json.dumps(sample.headers)
    assert provider.event_type(delivery, payload) == expected_type
    assert sample.type == event_type
    assert sample.headers["Content-Type"] == sample.content_type


@pytest.mark.parametrize(("provider_id", "event_type", "expected_type"), EXPECTED)
def test_sample_renders_fresh_ids_each_time(
    provider_id, event_type, expected_type
) -> None:
    provider = get_provider(provider_id)
    first = samples.render(provider_id, event_type, now=time.time())
    second = samples.render(provider_id, event_type, now=time.time())
    # A GitHub ping body holds nothing unique; its delivery id is in a header.
    assert (first.body, first.headers) != (second.body, second.headers)
    assert first.delivery_id != second.delivery_id
    ids = [
        provider.delivery_id(as_delivery(s), provider.parse(as_delivery(s)))
        for s in (first, second)
    ]
    if ids[0] is not None:
        assert ids[0] != ids[1]


@pytest.mark.parametrize(
    ("provider_id", "event_type"),
    [
        ("stripe", "charge.refunded"),
        ("github", "pull_request"),
        ("shopify", "orders/create"),
        ("slack", "event_callback"),
        ("twilio", "message.received"),
    ],
)
def test_sample_delivery_id_is_what_the_provider_reads(provider_id, event_type) -> None:
    provider = get_provider(provider_id)
    sample = samples.render(provider_id, event_type, now=time.time())
    delivery = as_delivery(sample)
    assert provider.delivery_id(delivery, provider.parse(delivery)) == (
        sample.delivery_id
    )


def test_standard_sample_delivery_id_is_a_message_id() -> None:
    # The id travels in webhook-id, which sign() sets; here only its form matters.
    sample = samples.render("standard", now=time.time())
    assert re.fullmatch(r"msg_[A-Za-z0-9]{24}", sample.delivery_id)


def test_sample_placeholders_take_the_time_given() -> None:
    sample = samples.render("stripe", "payment_intent.succeeded", now=1718000000.25)
    assert json.loads(sample.body)["created"] == 1718000000
    shopify = samples.render("shopify", now=1718000000.25)
    assert shopify.headers["X-Shopify-Triggered-At"] == "2024-06-10T06:13:20.250Z"


def test_github_sample_headers_name_the_event_and_delivery() -> None:
    sample = samples.render("github", "ping", now=time.time())
    assert sample.headers["X-GitHub-Event"] == "ping"
    assert sample.headers["X-GitHub-Delivery"] == sample.delivery_id
    assert sample.headers["User-Agent"].startswith("GitHub-Hookshot/")
    # GitHub sends compact JSON; the stored sample is indented for review.
    assert b"\n" not in sample.body and b'":' in sample.body


def test_shopify_sample_headers_carry_topic_ids_and_trigger_time() -> None:
    sample = samples.render("shopify", "orders/create", now=time.time())
    headers = sample.headers
    assert headers["X-Shopify-Topic"] == "orders/create"
    assert headers["X-Shopify-Event-Id"] == sample.delivery_id
    assert headers["X-Shopify-Webhook-Id"] != sample.delivery_id
    assert headers["X-Shopify-Shop-Domain"].endswith(".myshopify.com")
    assert "X-Shopify-Triggered-At" in headers
    order = json.loads(sample.body)
    assert isinstance(order["id"], int)
    assert order["admin_graphql_api_id"] == f"gid://shopify/Order/{order['id']}"


def test_twilio_sample_is_a_form_with_an_idempotency_token() -> None:
    sample = samples.render("twilio", now=time.time())
    assert sample.content_type == samples.FORM
    assert sample.headers["I-Twilio-Idempotency-Token"] == sample.delivery_id
    form = get_provider("twilio").parse(as_delivery(sample))
    assert re.fullmatch(r"SM[0-9a-f]{32}", form["MessageSid"])


def test_stripe_sample_is_sent_indented_as_stripe_does() -> None:
    sample = samples.render("stripe", now=time.time())
    assert sample.content_type == "application/json; charset=utf-8"
    assert sample.body.startswith(b'{\n  "id": "evt_')


def test_unknown_type_lists_the_available_ones() -> None:
    with pytest.raises(
        samples.UnknownSampleError, match="available: push, pull_request, ping"
    ):
        samples.render("github", "issues", now=time.time())


def test_provider_without_samples_uses_the_generic_ones() -> None:
    assert samples.types("acme") == ["order.paid"]


def test_configurable_sample_sends_the_id_and_type_headers_the_endpoint_reads() -> None:
    options = {"id_header": "X-Hook-Id", "type_header": "X-Hook-Type"}
    sample = samples.render("hmac", options=options, now=time.time())
    provider = get_provider("hmac", options)
    delivery = as_delivery(sample)
    assert provider.delivery_id(delivery, None) == sample.delivery_id
    assert provider.event_type(delivery, None) == "order.paid"


def test_own_json_data_is_sent_with_placeholders_filled() -> None:
    data = b'{"id": "evt_{{id}}", "created": {{now}}, "type": "x.y"}'
    sample = samples.render("stripe", data=data, now=1700000000)
    body = json.loads(sample.body)
    assert body["created"] == 1700000000
    assert re.fullmatch(r"evt_[A-Za-z0-9]{24}", body["id"])
    assert sample.content_type == "application/json; charset=utf-8"


def test_own_form_data_for_a_json_provider_is_labelled_as_a_form() -> None:
    data = b"command=%2Fdeploy&text=now&trigger_id={{hex}}"
    sample = samples.render("slack", data=data, now=time.time())
    assert sample.content_type == samples.FORM
    assert b"{{" not in sample.body


def test_own_json_data_for_twilio_is_labelled_json() -> None:
    sample = samples.render("twilio", data=b'{"a": 1}', now=time.time())
    assert sample.content_type == samples.JSON
    assert sample.body == b'{"a": 1}'


def test_own_binary_data_is_sent_byte_for_byte() -> None:
    data = b"\xff\xfe{{id}}"
    sample = samples.render("none", data=data, now=time.time())
    assert sample.body == data
