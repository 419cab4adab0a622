from __future__ import annotations

import pytest
from django.test import override_settings

from webhooks.exceptions import ProviderConfigError, UnknownProviderError
from webhooks.providers import get_provider, provider_ids
from webhooks.providers.base import Provider
from webhooks.providers.github import GitHubProvider


class AcmeProvider(Provider):
    id = "acme"
    name = "Acme"

    def verify(self, delivery, secrets, *, tolerance, now) -> None:
        return None


def test_builtin_providers_are_registered() -> None:
    assert {
        "stripe",
        "github",
        "shopify",
        "slack",
        "twilio",
        "standard",
        "hmac",
        "basic",
        "none",
    } <= set(provider_ids())


def test_get_provider_builds_an_instance() -> None:
    assert isinstance(get_provider("github"), GitHubProvider)


def test_unknown_provider_raises() -> None:
    with pytest.raises(UnknownProviderError):
        get_provider("acme")


def test_extra_provider_from_settings_is_registered_and_reset_after() -> None:
    with override_settings(WEBHOOKS_PROVIDERS={"acme": f"{__name__}.AcmeProvider"}):
        assert isinstance(get_provider("acme"), AcmeProvider)
        assert "acme" in provider_ids()
    with pytest.raises(UnknownProviderError):
        get_provider("acme")


def test_unknown_option_raises_config_error() -> None:
    with pytest.raises(ProviderConfigError, match="colour"):
        get_provider("github", {"colour": "red"})
