"""The provider registry: every provider module in this package, plus ``WEBHOOKS_PROVIDERS``.

A built-in provider is found, not listed: each module of this package is
imported once and every :class:`~webhooks.providers.base.Provider` subclass it
defines with an ``id`` of its own is registered under that id. Adding a
provider is its module, its tests and its samples.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from webhooks.conf import conf
from webhooks.exceptions import UnknownProviderError
from webhooks.providers.base import KeySource, Provider


@functools.cache
def builtin_classes() -> dict[str, type[Provider]]:
    """The providers defined in this package's modules, by id."""
    found: dict[str, type[Provider]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if not (
                isinstance(value, type)
                and issubclass(value, Provider)
                and value.__module__ == module.__name__
                and "id" in vars(value)
            ):
                continue
            if value.id in found:
                raise ImproperlyConfigured(
                    f"providers {found[value.id].__module__} and {module.__name__} "
                    f"both have the id {value.id!r}"
                )
            found[value.id] = value
    return found


def builtin_ids() -> list[str]:
    return sorted(builtin_classes())


@functools.cache
def provider_classes() -> dict[str, type[Provider]]:
    """Every provider class by id. Raises ImportError for a bad dotted path in settings."""
    extra = {
        provider_id: import_string(path) for provider_id, path in conf.PROVIDERS.items()
    }
    return {**builtin_classes(), **extra}


def provider_ids() -> list[str]:
    return sorted({*builtin_ids(), *conf.PROVIDERS})


def get_provider(
    provider_id: str,
    options: dict[str, Any] | None = None,
    *,
    keys: KeySource | None = None,
) -> Provider:
    """The provider ``provider_id`` built with an endpoint's ``options``.

    ``keys`` is where a provider that verifies with keys published on its own
    servers (PayPal) gets them; it is passed only to such providers
    (:attr:`~webhooks.providers.base.Provider.uses_remote_keys`).
    """
    try:
        cls = provider_classes()[provider_id]
    except KeyError:
        raise UnknownProviderError(f"no provider {provider_id!r}") from None
    if keys is not None and cls.uses_remote_keys:
        return cls(options, keys=keys)
    return cls(options)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "WEBHOOKS_PROVIDERS":
        provider_classes.cache_clear()
