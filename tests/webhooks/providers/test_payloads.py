from __future__ import annotations

import time

from webhooks.providers import payloads
from webhooks.providers.delivery import Delivery


def delivery(body: bytes, content_type: str = "application/json") -> Delivery:
    return Delivery("POST", {"content-type": content_type}, body, None, "", time.time())


def test_json_body_is_parsed() -> None:
    assert payloads.parse(delivery(b'{"a": [1, 2]}')) == {"a": [1, 2]}


def test_json_is_tried_whatever_the_content_type() -> None:
    assert payloads.parse(delivery(b"[1]", "text/plain")) == [1]


def test_form_body_keeps_repeated_keys_as_lists() -> None:
    body = b"a=1&b=2&a=3&c="
    parsed = payloads.parse(
        delivery(body, "application/x-www-form-urlencoded; charset=utf-8")
    )
    assert parsed == {"a": ["1", "3"], "b": "2", "c": ""}


def test_unparseable_bodies_give_none() -> None:
    assert payloads.parse(delivery(b"\xff\xfe")) is None
    assert payloads.parse(delivery(b"not json")) is None
    assert (
        payloads.parse(delivery(b"\xff=1", "application/x-www-form-urlencoded")) is None
    )
    assert payloads.parse(delivery(b"a", "application/x-www-form-urlencoded")) is None


def test_empty_form_is_an_empty_dict() -> None:
    assert payloads.parse(delivery(b"", "application/x-www-form-urlencoded")) == {}


def test_too_deep_json_gives_none() -> None:
    ok = b"[" * payloads.MAX_DEPTH + b"]" * payloads.MAX_DEPTH
    too_deep = b"[" * (payloads.MAX_DEPTH + 2) + b"]" * (payloads.MAX_DEPTH + 2)
    assert payloads.parse_json(ok) is not None
    assert payloads.parse_json(too_deep) is None
    assert payloads.parse_json(b"[" * 100000) is None


def test_nul_anywhere_gives_none() -> None:
    assert payloads.parse_json(b'{"a\\u0000": 1}') is None
    assert payloads.parse_json(b'{"a": ["x\\u0000"]}') is None
    assert payloads.parse_form(b"a=%00") is None


def test_field_reads_nested_scalars_only() -> None:
    payload = {"a": {"b": 5, "c": [1], "d": None, "e": True}}
    assert payloads.field(payload, "a", "b") == "5"
    assert payloads.field(payload, "a", "c") is None
    assert payloads.field(payload, "a", "d") is None
    assert payloads.field(payload, "a", "e") is None
    assert payloads.field(payload, "x", "y") is None
    assert payloads.field([1], "a") is None
