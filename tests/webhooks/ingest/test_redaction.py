from __future__ import annotations

import pytest

from webhooks.ingest.redaction import REDACTED, redact

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(
    "name", ["Authorization", "cookie", "Proxy-Authorization", "X-Api-Key"]
)
def test_credential_headers_are_redacted_whatever_the_provider(name) -> None:
    assert redact({name: "anything"}) == {name: REDACTED}


def test_provider_secret_headers_are_redacted() -> None:
    stored = redact(
        {"x-gitlab-token": "t", "x-gitlab-event": "Push Hook"},
        secret_headers={"X-Gitlab-Token"},
    )
    assert stored == {"x-gitlab-token": REDACTED, "x-gitlab-event": "Push Hook"}


@pytest.mark.parametrize(
    "value", [SECRET, f"  {SECRET} ", f"Token {SECRET}", f"a=1, secret={SECRET}"]
)
def test_a_header_holding_an_endpoint_secret_is_redacted_whatever_its_name(value):
    assert redact({"x-custom": value}, secrets=[SECRET]) == {"x-custom": REDACTED}


def test_signatures_and_other_headers_are_kept() -> None:
    headers = {"x-hub-signature-256": "sha256=" + "ab" * 32, "x-custom": "hello"}
    assert redact(headers, secrets=[SECRET]) == headers


def test_short_secrets_are_not_looked_for_inside_values() -> None:
    assert redact({"x-count": "abc"}, secrets=["abc"]) == {"x-count": "abc"}


def test_nul_is_dropped_and_cr_lf_kept_for_escaping() -> None:
    stored = redact({"x-a": "a\x00b\r\nSet-Cookie: c=d"})
    assert stored == {"x-a": "ab\r\nSet-Cookie: c=d"}
