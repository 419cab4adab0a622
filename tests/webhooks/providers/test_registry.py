from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils.module_loading import import_string

from webhooks.exceptions import ProviderConfigError, UnknownProviderError
from webhooks.providers import (
    builtin_classes,
    builtin_ids,
    get_provider,
    provider_classes,
    provider_ids,
)
from webhooks.providers.base import Provider
from webhooks.providers.github import GitHubProvider

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
PROVIDERS_DIR = ROOT / "webhooks" / "providers"


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


def test_every_module_of_the_package_is_discovered() -> None:
    modules = {
        path.stem
        for path in PROVIDERS_DIR.glob("*.py")
        # The registry and what providers share are not providers.
        if path.stem
        not in {"__init__", "base", "configurable", "delivery", "payloads", "signing"}
    }
    found = {cls.__module__.rsplit(".", 1)[1] for cls in builtin_classes().values()}
    assert found == modules


def test_builtin_ids_are_each_class_own_id() -> None:
    for provider_id, cls in builtin_classes().items():
        assert cls.id == provider_id
        assert (
            cls.__module__ == f"webhooks.providers.{cls.__module__.rsplit('.', 1)[1]}"
        )
    assert "configurable" not in builtin_ids()


def test_documented_dotted_paths_still_name_the_builtin_classes() -> None:
    # WEBHOOKS_PROVIDERS and users' code may name a built-in by its dotted path.
    for provider_id, cls in builtin_classes().items():
        assert import_string(f"{cls.__module__}.{cls.__name__}") is cls
        assert provider_classes()[provider_id] is cls


def test_a_setting_may_replace_a_builtin_provider() -> None:
    with override_settings(WEBHOOKS_PROVIDERS={"github": f"{__name__}.AcmeProvider"}):
        assert isinstance(get_provider("github"), AcmeProvider)
    assert isinstance(get_provider("github"), GitHubProvider)


def readme_provider_rows() -> dict[str, list[str]]:
    """The README's provider table: cells by provider id."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Providers\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([a-z0-9_-]+)` \|", line)
        if match:
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[match.group(1)] = cells
    return rows


def test_readme_provider_table_lists_exactly_the_registered_providers() -> None:
    assert sorted(readme_provider_rows()) == builtin_ids()


def test_readme_provider_table_agrees_with_each_provider() -> None:
    for provider_id, cells in readme_provider_rows().items():
        cls = builtin_classes()[provider_id]
        _, scheme, _, tolerance, handshake, docs = cells
        assert scheme, provider_id
        if cls.docs_url:
            assert f"]({cls.docs_url})" in docs, provider_id
        if cls.default_tolerance is None:
            assert not re.search(r"\d+ s\b", tolerance), provider_id
        else:
            assert f"{cls.default_tolerance} s" in tolerance, provider_id
        if cls.extra_methods:
            assert all(method in handshake for method in cls.extra_methods), provider_id


def test_a_handshake_written_without_secrets_keeps_working() -> None:
    from webhooks.providers.base import Provider
    from webhooks.providers.delivery import Answer, Delivery

    class Older(Provider):
        id = "older-handshake"
        name = "Older"

        def verify(self, delivery, secrets):  # type: ignore[no-untyped-def]
            return None

        def handshake(self, delivery, payload):  # type: ignore[no-untyped-def]
            return Answer(200, b"pong") if payload == {"ping": True} else None

    provider = Older({})
    delivery = Delivery("POST", {}, b"{}", None, "https://hooks.example.com/h/", 0.0)
    answer = provider.handshake(delivery, {"ping": True}, ["s3cret"])
    assert answer is not None and answer.body == b"pong"
    assert provider.handshake(delivery, {}, ["s3cret"]) is None
