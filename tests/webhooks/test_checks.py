from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from tests.factories import make_endpoint
from webhooks.checks import check_endpoints, check_settings, check_urls


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_settings_default_have_no_problems() -> None:
    assert check_settings() == []


@override_settings(WEBHOOKS_PROVIDERS={"acme": "no.such.module.AcmeProvider"})
def test_unimportable_provider_class_is_e001() -> None:
    assert ids(check_settings()) == ["webhooks.E001"]


@pytest.mark.parametrize("limit", [0, -5, "5MB", True])
def test_bad_max_body_bytes_is_e003(limit) -> None:
    with override_settings(WEBHOOKS_MAX_BODY_BYTES=limit):
        assert ids(check_settings()) == ["webhooks.E003"]


@override_settings(WEBHOOKS_TRUSTED_PROXIES=["10.0.0.0/8", "proxy.local"])
def test_trusted_proxy_that_is_not_a_network_is_e004() -> None:
    assert ids(check_settings()) == ["webhooks.E004"]


@override_settings(WEBHOOKS_TRUSTED_PROXIES="10.0.0.0/8")
def test_trusted_proxies_as_a_string_is_e004() -> None:
    assert ids(check_settings()) == ["webhooks.E004"]


@pytest.mark.parametrize("rate", [(0, 1), (10,), "10/s", (10, -1)])
def test_bad_rate_limit_is_e005(rate) -> None:
    with override_settings(WEBHOOKS_RATE_LIMIT_PER_SOURCE=rate):
        assert ids(check_settings()) == ["webhooks.E005"]


@pytest.mark.django_db
def test_endpoint_checks_skip_without_databases() -> None:
    make_endpoint("odd", "no-such-provider")
    assert check_endpoints(databases=None) == []


@pytest.mark.django_db
def test_endpoint_with_unknown_provider_is_e002() -> None:
    make_endpoint("odd", "no-such-provider")
    messages = check_endpoints(databases=["default"])
    assert ids(messages) == ["webhooks.E002"]
    assert "github" in messages[0].hint


@pytest.mark.django_db
def test_endpoint_with_invalid_provider_options_is_e006() -> None:
    make_endpoint("h", "hmac", options={"algorithm": "md5"})
    assert ids(check_endpoints(databases=["default"])) == ["webhooks.E006"]


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_unsigned_endpoint_while_debug_is_off_is_w001() -> None:
    make_endpoint("open", "none", secret=None)
    assert ids(check_endpoints(databases=["default"])) == ["webhooks.W001"]


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_unsigned_endpoint_while_debugging_is_fine() -> None:
    make_endpoint("open", "none", secret=None)
    assert check_endpoints(databases=["default"]) == []


@pytest.mark.django_db
def test_signed_endpoint_without_a_valid_secret_is_w002() -> None:
    make_endpoint("gh", "github", secret=None)
    messages = check_endpoints(databases=["default"])
    assert ids(messages) == ["webhooks.W002"]
    assert "rotate gh" in messages[0].hint


@pytest.mark.django_db
def test_endpoint_with_invalid_allowed_network_is_e004() -> None:
    make_endpoint("gh", "github", allowed_networks=["10.0.0.0/8", "not-a-net"])
    assert ids(check_endpoints(databases=["default"])) == ["webhooks.E004"]


@pytest.mark.django_db
def test_endpoint_checks_run_with_the_database_checks() -> None:
    make_endpoint("odd", "no-such-provider")
    assert "webhooks.E002" in ids(run_checks(databases=["default"]))


@pytest.mark.django_db
@override_settings(DEBUG=False, WEBHOOKS_PUBLIC_URL="", WEBHOOKS_TRUSTED_PROXIES=[])
@pytest.mark.parametrize(
    ("provider", "options"),
    [
        ("twilio", {}),
        ("square", {}),
        ("hmac", {"template": "{url}{body}"}),
    ],
)
def test_url_signing_endpoint_without_a_public_url_is_w003(provider, options) -> None:
    make_endpoint("signed-url", provider, options=options)
    messages = check_endpoints(databases=["default"])
    assert ids(messages) == ["webhooks.W003"]
    assert "WEBHOOKS_PUBLIC_URL" in messages[0].hint


@pytest.mark.django_db
@pytest.mark.parametrize(
    "setting",
    [
        {"WEBHOOKS_PUBLIC_URL": "https://hooks.example.com"},
        {"WEBHOOKS_TRUSTED_PROXIES": ["10.0.0.0/8"]},
        {"DEBUG": True},
    ],
)
def test_url_signing_endpoint_with_a_public_url_or_proxies_is_fine(setting) -> None:
    make_endpoint("sms", "twilio")
    with override_settings(**{"DEBUG": False, "WEBHOOKS_PUBLIC_URL": "", **setting}):
        assert check_endpoints(databases=["default"]) == []


@pytest.mark.django_db
@override_settings(DEBUG=False, WEBHOOKS_PUBLIC_URL="")
def test_endpoints_that_do_not_sign_the_url_need_no_public_url() -> None:
    make_endpoint("gh", "github")
    make_endpoint("sq", "square", options={"notification_url": "https://x.test/h/"})
    assert check_endpoints(databases=["default"]) == []


def test_included_webhooks_urls_pass() -> None:
    assert check_urls() == []


@override_settings(ROOT_URLCONF="tests.urls_without_webhooks")
def test_missing_webhooks_urls_is_e007() -> None:
    messages = check_urls()
    assert ids(messages) == ["webhooks.E007"]
    assert 'include("webhooks.urls")' in messages[0].hint
